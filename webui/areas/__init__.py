"""Admin areas: one module per area, each with a blueprint `bp` and its menu entries `NAV`.

`create_app` registers every module found here, so adding an area never edits shared files.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from types import ModuleType
from typing import Literal

Group = Literal["calls", "people", "routing", "lines", "system", "mine"]
GROUPS: tuple[Group, ...] = ("calls", "people", "routing", "lines", "system", "mine")


@dataclass(frozen=True)
class NavItem:
    """One menu entry: the endpoint, its label (translated when shown), who sees it."""

    endpoint: str
    label: str  # an English msgid; wrap it with lazy_gettext in the area module
    group: Group
    admin_only: bool = True
    order: int = 50


def discover() -> list[ModuleType]:
    """Every area module in this package, by name."""
    modules = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            modules.append(importlib.import_module(f"{__name__}.{info.name}"))
    return modules
