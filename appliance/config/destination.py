"""Destination: where a call goes (used by flows, chains, menus, queues and policies)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, model_serializer, model_validator

from .types import (
    ConfigModel,
    Key,
    as_text,
    normalize_email,
    normalize_extension,
    normalize_key,
    normalize_phone,
    normalize_sip_uri,
)

DestinationKind = Literal[
    "employee", "department", "voice_menu", "queue", "voicemail", "flow", "chain",
    "external", "sip_uri", "webhook", "fax", "callback", "hangup",
]
_KIND_ALIASES = {"menu": "voice_menu"}
_NO_TARGET = frozenset({"callback", "hangup"})
_EXAMPLES = {
    "employee": "{employee: '101'}",
    "department": "{department: sales}",
    "voice_menu": "{voice_menu: main}",
    "queue": "{queue: support}",
    "voicemail": "{voicemail: general}",
    "flow": "{flow: night}",
    "chain": "{chain: duty}",
    "external": "{external: '+79161234567'}",
    "sip_uri": "{sip_uri: 'sip:reception@192.168.1.20'}",
    "webhook": "{webhook: crm-router}",
}


def optional_text(value: object) -> str | None:
    """None stays None; text or a YAML integer becomes stripped text."""
    return None if value is None else as_text(value, "a destination target")


class Destination(ConfigModel):
    """Where a call goes: a kind and (for most kinds) a target.

    In YAML it is written compactly: `{department: sales}`, `{employee: '101'}`,
    `{external: '+79161234567', line: sim1}`, `hangup`, `callback`, or `'department:sales'`.
    """

    kind: DestinationKind
    target: Annotated[str | None, BeforeValidator(optional_text)] = None
    line: Key | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_compact(cls, data: Any) -> Any:
        if isinstance(data, str):
            text = data.strip()
            if text.startswith(("sip:", "sips:")):
                return {"kind": "sip_uri", "target": text}
            kind, sep, target = text.partition(":")
            kind = kind.strip()
            return {"kind": _KIND_ALIASES.get(kind, kind),
                    "target": target.strip() if sep else None}
        if isinstance(data, dict) and "kind" not in data:
            names = [name for name in data if name != "line"]
            if len(names) != 1:
                raise ValueError(
                    "a destination names exactly one place, e.g. {department: sales} or "
                    "{external: '+79161234567', line: sim1}"
                )
            name = names[0]
            out: dict[str, Any] = {
                "kind": _KIND_ALIASES.get(name, name) if isinstance(name, str) else name,
                "target": data[name],
            }
            if "line" in data:
                out["line"] = data["line"]
            return out
        return data

    @model_validator(mode="after")
    def _check_target(self) -> Destination:
        kind = self.kind
        if kind in _NO_TARGET:
            if self.target:
                raise ValueError(f"'{kind}' takes no target")
            self.target = None
        elif kind == "fax":
            self.target = normalize_email(self.target) if self.target else None
        else:
            if not self.target:
                raise ValueError(f"'{kind}' needs a target, e.g. {_EXAMPLES[kind]}")
            if kind == "employee":
                self.target = normalize_extension(self.target)
            elif kind == "external":
                self.target = normalize_phone(self.target)
            elif kind == "sip_uri":
                self.target = normalize_sip_uri(self.target)
            else:
                self.target = normalize_key(self.target)
        if self.line is not None and kind != "external":
            raise ValueError("`line` only applies to an external number")
        return self

    @model_serializer(mode="plain")
    def _to_compact(self) -> str | dict[str, str]:
        if self.target is None:
            return self.kind
        out: dict[str, str] = {self.kind: self.target}
        if self.line is not None:
            out["line"] = self.line
        return out

    def __str__(self) -> str:
        """`kind:target` (or just `kind`), for messages and route explanations."""
        return self.kind if self.target is None else f"{self.kind}:{self.target}"
