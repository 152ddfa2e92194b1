"""Numbers: every incoming number (SIM, trunk DID, FXO line) and the call flow it follows."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from . import NavItem
from ._routing import Section, register

bp = Blueprint("numbers", __name__, url_prefix="/numbers")
NAV = [NavItem("numbers.numbers_list", _l("Numbers"), "routing", order=10)]


def _enabled(item: dict[str, Any]) -> str:
    return _("yes") if item.get("enabled", True) else _("no")


NUMBERS = Section(
    section="numbers", name="numbers", url="", template="routing/number.html",
    title=lambda: _("Numbers"), one=lambda: _("Number"),
    columns=[(lambda: _("Number"), lambda it: it.get("number", "")),
             (lambda: _("Label"), lambda it: it.get("label", "")),
             (lambda: _("Line"), lambda it: it.get("line", "")),
             (lambda: _("Call flow"), lambda it: it.get("flow", "")),
             (lambda: _("Enabled"), _enabled)],
    diagram_kind="number", thumbnails=True, per_page=25)
register(bp, NUMBERS)
