"""Voice menus (IVR): greeting, keys to destinations (repeating rows), direct dialling,
the default when no key is pressed."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from . import NavItem
from ._routing import Section, register

bp = Blueprint("menus", __name__, url_prefix="/menus")
NAV = [NavItem("menus.menus_list", _l("Voice menus"), "routing", order=40)]

_KEY_PATH = re.compile(r"keys(?:\['(?P<quoted>[^']*)'\]|\.(?P<bare>[^.\[]*))(?P<rest>.*)")


def menu_to_item(posted: dict[str, Any]) -> dict[str, Any]:
    """The form's key rows (`keyrows[i].digit`, `keyrows[i].to`) as the menu's key map."""
    item = {k: v for k, v in posted.items() if k != "keyrows"}
    keys: dict[str, Any] = {}
    rows = posted.get("keyrows")
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and row.get("digit") is not None:
            digit = str(row["digit"])
            # A digit given twice: the error names the second row (dicts keep one).
            keys[digit if digit not in keys else f"{digit} "] = row.get("to")
    if keys:
        item["keys"] = keys
    return item


def menu_to_form(item: dict[str, Any]) -> dict[str, Any]:
    """A stored menu with its key map as rows, for the form."""
    if "keyrows" in item or not isinstance(item.get("keys"), dict):
        return item
    rows = [{"digit": d, "to": to} for d, to in item["keys"].items()]
    return {**item, "keyrows": rows}


def menu_fields(errors: dict[str, str], item: dict[str, Any]) -> dict[str, str]:
    """Problems under `keys['1']` land on the row of key 1."""
    keys = item.get("keys")
    digits = [str(d) for d in keys] if isinstance(keys, dict) else []
    out: dict[str, str] = {}

    def add(target: str, message: str) -> None:
        out[target] = f"{out[target]}; {message}" if target in out else message

    for path, message in errors.items():
        match = _KEY_PATH.fullmatch(path)
        if match is None:
            add(path, message)
            continue
        digit = match.group("quoted") if match.group("quoted") is not None else match.group(
            "bare")
        if digit not in digits:
            add("keys", message)
            continue
        field = "digit" if match.group("quoted") is None else "to"
        add(f"keyrows[{digits.index(digit)}].{field}", message)
    return out


def _keys(item: dict[str, Any]) -> str:
    return " ".join(sorted(str(d) for d in (item.get("keys") or {})))


MENUS = Section(
    section="voice_menus", name="menus", url="", template="routing/menu.html",
    title=lambda: _("Voice menus"), one=lambda: _("Voice menu"),
    columns=[(lambda: _("Key"), lambda it: it.get("key", "")),
             (lambda: _("Title"), lambda it: it.get("name", "")),
             (lambda: _("Extension"), lambda it: it.get("extension", "")),
             (lambda: _("Keys"), _keys)],
    to_item=menu_to_item, to_form=menu_to_form, to_fields=menu_fields,
    diagram_kind="voice_menu")
register(bp, MENUS)
