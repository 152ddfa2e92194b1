"""The destination picker's data: what each kind of destination can point at, from the config.

Used with the `destination()` macro of `templates/_destination.html` by every page that
edits a `Destination` (a department's overflow, flows, menus, chains...).
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _

# Kinds whose target is one of the configured items: kind -> (config section, key field).
SECTIONS: dict[str, tuple[str, str]] = {
    "employee": ("employees", "extension"),
    "department": ("departments", "key"),
    "voice_menu": ("voice_menus", "key"),
    "queue": ("queues", "key"),
    "voicemail": ("voicemail_boxes", "key"),
    "flow": ("flows", "key"),
    "chain": ("forwarding_chains", "key"),
    "webhook": ("webhooks", "key"),
}
# Kinds whose target is typed in (a number, an address), and kinds without a target.
TYPED = ("external", "sip_uri", "fax")
NO_TARGET = ("hangup", "callback")


def kind_labels() -> list[tuple[str, str]]:
    """Every destination kind with its translated name, in menu order."""
    return [
        ("employee", _("Employee")), ("department", _("Department")),
        ("voice_menu", _("Voice menu")), ("queue", _("Queue")),
        ("voicemail", _("Voicemail box")), ("flow", _("Call flow")),
        ("chain", _("Forwarding chain")), ("external", _("External number")),
        ("sip_uri", _("SIP address")), ("webhook", _("Webhook")), ("fax", _("Fax to e-mail")),
        ("callback", _("Call back")), ("hangup", _("Hang up")),
    ]


def destination_choices(config: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """For each kind with configured targets, (target, label) pairs; plus `lines` for the
    line an external number is dialled through. `config` is `ConfigEditor.data()`."""
    choices: dict[str, list[tuple[str, str]]] = {}
    for kind, (section, field) in SECTIONS.items():
        pairs = []
        for item in config.get(section, []):
            key = str(item.get(field, ""))
            name = str(item.get("name") or "")
            pairs.append((key, f"{key} · {name}" if name and name != key else key))
        choices[kind] = pairs
    choices["lines"] = [(str(line.get("key")), str(line.get("name") or line.get("key")))
                        for line in config.get("lines", [])]
    return choices


def destination_parts(value: Any) -> tuple[str, str, str]:
    """(kind, target, line) of a stored compact destination (`hangup`, `{department: sales}`,
    `'department:sales'`) or a posted one (`{kind, target, line}`); empty strings if unset."""
    if isinstance(value, str):
        kind, _sep, target = value.partition(":")
        if value.startswith(("sip:", "sips:")):
            return "sip_uri", value, ""
        return kind.strip(), target.strip(), ""
    if isinstance(value, dict):
        if "kind" in value:
            return (str(value.get("kind") or ""), str(value.get("target") or ""),
                    str(value.get("line") or ""))
        names = [k for k in value if k != "line"]
        if len(names) == 1:
            return str(names[0]), str(value[names[0]] or ""), str(value.get("line") or "")
    return "", "", ""


def picker(config: dict[str, Any]) -> dict[str, Any]:
    """What the `destination()` macro needs, to pass to render_template as `dest`."""
    return {"kinds": kind_labels(), "choices": destination_choices(config),
            "parts": destination_parts, "typed": TYPED, "no_target": NO_TARGET}
