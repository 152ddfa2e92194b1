"""The configuration as one YAML document: export it, validate it, import it."""

from __future__ import annotations

from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from ..db import Database
from .errors import ConfigError, problems_from_validation
from .model import BoxConfig
from .read import export_config
from .safeyaml import load_yaml
from .store import ImportReport
from .write import apply_config

__all__ = [
    "ImportReport",
    "config_to_yaml",
    "export_config",
    "export_yaml",
    "import_config",
    "import_yaml",
    "parse_config",
    "parse_model",
    "parse_yaml",
]

M = TypeVar("M", bound=BaseModel)

HEADER = (
    "# Office PBX configuration (format: docs/config.md).\n"
    "# Secrets are not exported: SIP device passwords appear as digests (ha1_*), and line,\n"
    "# CRM, webhook and SMTP secrets are left out (importing keeps the stored ones).\n"
)


def parse_model(model: type[M], data: Any, *, path: str = "") -> M:
    """Validate `data` as `model`; ConfigError (with paths under `path`) if it is wrong."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(problems_from_validation(exc, prefix=path)) from None


def parse_config(data: Any) -> BoxConfig:
    """Validate plain data (parsed YAML or JSON) as a whole box configuration."""
    if data is None:
        raise ConfigError("the document is empty")
    if not isinstance(data, dict):
        raise ConfigError("the configuration must be a mapping (key: value) at the top level")
    return parse_model(BoxConfig, data)


def parse_yaml(text: str | bytes) -> BoxConfig:
    """Parse and fully validate a YAML configuration without touching any database."""
    return parse_config(load_yaml(text))


class _Dumper(yaml.SafeDumper):
    """Block-style YAML that quotes strings YAML 1.1 readers would misread."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def config_to_data(cfg: BoxConfig) -> dict[str, Any]:
    """A configuration as plain JSON-ready data, the shape YAML and the REST API show."""
    data = cfg.model_dump(mode="json", exclude_none=True)
    # exclude_none drops `ring_mobile_after: never` (None inside) before its serializer runs,
    # and a file without it means the default of 10 s: put 'never' back in its place.
    for employee, dumped in zip(cfg.employees, data.get("employees", []), strict=True):
        if employee.ring_mobile_after is None:
            dumped["ring_mobile_after"] = "never"
            order = [k for k in type(employee).model_fields if k in dumped]
            dumped.update({k: dumped.pop(k) for k in order})
    return data


def config_to_yaml(cfg: BoxConfig) -> str:
    """Render a configuration as YAML (no secrets; stable output)."""
    data = config_to_data(cfg)
    body = yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=100,
                     default_flow_style=False)
    return HEADER + body


def export_yaml(db: Database) -> str:
    """The stored configuration as a YAML document."""
    return config_to_yaml(export_config(db))


def import_config(db: Database, cfg: BoxConfig, *, actor: str = "system") -> ImportReport:
    """Replace the stored configuration with an already validated one (one transaction)."""
    return apply_config(db, cfg, actor=actor)


def import_yaml(db: Database, text: str | bytes, *, actor: str = "system") -> ImportReport:
    """Validate a YAML document fully, then replace the configuration in one transaction.

    Nothing is written if anything is wrong (ConfigError lists every problem). Call
    records, recordings, voicemail, users, tokens and other history are not touched.
    """
    cfg = parse_yaml(text)
    return apply_config(db, cfg, actor=actor)
