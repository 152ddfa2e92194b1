"""Call flows (schedule branches, greetings, destinations), forwarding chains, and the live
diagram preview the edit pages redraw as the admin types."""

from __future__ import annotations

import copy
from typing import Any

from flask import Blueprint, abort, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from appliance.config.edit import LIST_SECTIONS, validate_item
from appliance.config.errors import ConfigError

from ..auth import admin_required
from ..context import web
from ..forms import FormError, field_errors, parse_form
from . import NavItem
from ._routing import Section, diagram, register

bp = Blueprint("flows", __name__, url_prefix="/flows")
# One menu entry per area; the tabs on every routing page lead to chains too.
NAV = [NavItem("flows.flows_list", _l("Call flows"), "routing", order=20)]


def _branches(item: dict[str, Any]) -> str:
    branches = item.get("branches") or []
    return ", ".join(str(b.get("when", "always")) for b in branches if isinstance(b, dict))


def _steps(item: dict[str, Any]) -> str:
    return str(len(item.get("steps") or []))


FLOWS = Section(
    section="flows", name="flows", url="", template="routing/flow.html",
    title=lambda: _("Call flows"), one=lambda: _("Call flow"),
    columns=[(lambda: _("Key"), lambda it: it.get("key", "")),
             (lambda: _("Title"), lambda it: it.get("name", "")),
             (lambda: _("Schedule"), lambda it: it.get("schedule", "")),
             (lambda: _("Branches"), _branches)],
    diagram_kind="flow", thumbnails=True, per_page=25)
CHAINS = Section(
    section="forwarding_chains", name="chains", url="/chains", template="routing/chain.html",
    title=lambda: _("Forwarding chains"), one=lambda: _("Forwarding chain"),
    columns=[(lambda: _("Key"), lambda it: it.get("key", "")),
             (lambda: _("Title"), lambda it: it.get("name", "")),
             (lambda: _("Steps"), _steps)],
    diagram_kind="chain")
register(bp, FLOWS)
register(bp, CHAINS)

_ROOTS = {"numbers": "number", "flows": "flow", "forwarding_chains": "chain",
          "voice_menus": "voice_menu"}


def _section(name: str) -> Section:
    from .menus import MENUS
    from .numbers import NUMBERS

    return {"numbers": NUMBERS, "flows": FLOWS, "forwarding_chains": CHAINS,
            "voice_menus": MENUS}[name]


def preview_svg(data: dict[str, Any], section: str, item: dict[str, Any],
                old_key: str | None) -> Markup:
    """The diagram of `data` with `item` (validated alone) in place of `old_key` (or added)."""
    field_name = LIST_SECTIONS[section]
    assert field_name is not None
    model = validate_item(section, item)
    stored = model.model_dump(mode="json", exclude_none=True)
    edited = copy.copy(data)
    items = [it for it in edited.get(section, []) or [] if isinstance(it, dict)]
    names = [str(it.get(field_name)) for it in items]
    new_key = str(stored[field_name])
    for name in (old_key, new_key):
        if name is not None and name in names:
            items[names.index(name)] = stored
            break
    else:
        items.append(stored)
    edited[section] = items
    return diagram(edited, _ROOTS[section], new_key)


@bp.post("/preview")
@admin_required
def preview() -> Any:
    """The diagram for an edit form's unsaved data (htmx), or the problems found in it."""
    section = request.args.get("section", "flows")
    if section not in _ROOTS:
        abort(404)
    sec = _section(section)
    old_key = request.args.get("key") or None
    try:
        item = sec.to_item(parse_form(request.form))
        svg = preview_svg(web().editor.data(), section, item, old_key)
    except FormError as exc:
        return render_template("routing/_preview_errors.html", errors={"": str(exc)})
    except ConfigError as exc:
        return render_template("routing/_preview_errors.html",
                               errors=sec.to_fields(field_errors(exc), item))
    return svg
