"""Shared by the routing areas: list/edit/delete pages over one configuration section,
choices for destination pickers, and the call-flow diagram of an item.

Not an area itself (the leading underscore keeps `discover` away): numbers, flows, menus,
schedules and outbound build their blueprints with `register`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from markupsafe import Markup
from werkzeug.routing import BuildError

from appliance.config.edit import LIST_SECTIONS, NotFoundError, item_key
from appliance.config.errors import ConfigError

from .. import flowgraph
from ..auth import actor, admin_required
from ..context import web
from ..destination import picker
from ..forms import FormError, field_errors, parse_form

MAX_KEY = 200  # longer URL keys cannot name an item; refused before any lookup

# Where the diagram's boxes link to: item kind -> (endpoint, URL argument). The people
# areas' pages (departments, employees, voicemail boxes) are linked when they are present.
_EDIT_ENDPOINTS = {
    "number": ("numbers.numbers_edit", "key"), "flow": ("flows.flows_edit", "key"),
    "chain": ("flows.chains_edit", "key"), "voice_menu": ("menus.menus_edit", "key"),
    "schedule": ("schedules.schedules_edit", "key"),
    "department": ("departments.edit", "key"), "employee": ("employees.edit", "ext"),
    "voicemail": ("voicemail.edit", "key"),
}


def item_link(kind: str, key: str) -> str | None:
    """The edit page of a configured item shown in a diagram (None: no such page here)."""
    if kind not in _EDIT_ENDPOINTS:
        return None
    endpoint, argument = _EDIT_ENDPOINTS[kind]
    try:
        return url_for(endpoint, **{argument: key})
    except BuildError:  # an area missing from this build: no link rather than a 500
        return None


def diagram(data: dict[str, Any], kind: str, key: str, *, thumb: bool = False) -> Markup:
    """The item's call path as inline SVG, in the page's language."""
    graph = flowgraph.build_graph(data, kind, key, gettext=_)
    svg = flowgraph.render_svg(graph, link=None if thumb else item_link,
                               title=_("Call flow diagram"),
                               css_class="flowgraph thumb" if thumb else "flowgraph")
    return Markup(svg)  # safe: render_svg escapes every text it writes


def keyed_choices(data: dict[str, Any], section: str, field_name: str = "key",
                  label: str = "name") -> list[tuple[str, str]]:
    """(key, 'key - name') for every item of a section, for a select."""
    out = []
    for item in data.get(section, []) or []:
        if isinstance(item, dict) and item.get(field_name) is not None:
            key = str(item[field_name])
            name = str(item.get(label) or "")
            out.append((key, f"{key} — {name}" if name and name != key else key))
    return out


def destination_choices(data: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """Items by kind for the pages' own selects (a number's flow and line, a route's lines);
    destination pickers get `webui.destination.picker` as `dest`."""
    return {
        "employee": keyed_choices(data, "employees", "extension"),
        "department": keyed_choices(data, "departments"),
        "voice_menu": keyed_choices(data, "voice_menus"),
        "queue": keyed_choices(data, "queues"),
        "voicemail": keyed_choices(data, "voicemail_boxes"),
        "flow": keyed_choices(data, "flows"),
        "chain": keyed_choices(data, "forwarding_chains"),
        "webhook": keyed_choices(data, "webhooks"),
        "line": keyed_choices(data, "lines"),
    }


@dataclass
class Section:
    """One configuration list section shown as list + edit pages."""

    section: str  # configuration section (appliance.config.edit.LIST_SECTIONS)
    name: str  # endpoint prefix: <name>_list, <name>_new, <name>_edit, <name>_delete
    url: str  # URL prefix inside the blueprint, e.g. "" or "/chains"
    template: str  # the edit form
    title: Callable[[], str]  # plural heading (translated when called)
    one: Callable[[], str]  # one item's heading
    columns: list[tuple[Callable[[], str], Callable[[dict[str, Any]], Any]]]
    # posted form data -> item data, and the item's error paths -> the form's field names
    to_item: Callable[[dict[str, Any]], dict[str, Any]] = lambda d: d
    to_fields: Callable[[dict[str, str], dict[str, Any]], dict[str, str]] = (
        lambda errors, item: errors)
    # item -> what the form shows (e.g. a menu's key map as rows)
    to_form: Callable[[dict[str, Any]], dict[str, Any]] = lambda d: d
    diagram_kind: str | None = None  # draw this kind of root on the edit page
    thumbnails: bool = False  # a small diagram per row of the list
    per_page: int = 50
    ordered: bool = False  # the order is meaning (first match wins): up/down buttons
    extra: dict[str, Any] = field(default_factory=dict)


def _check_key(key: str) -> None:
    if len(key) > MAX_KEY or any(c in key for c in "\x00\r\n"):
        abort(404)


def _context(sec: Section, data: dict[str, Any], item: dict[str, Any], key: str | None,
             errors: dict[str, str]) -> dict[str, Any]:
    root_key = None if key is None else key
    return {"sec": sec, "item": sec.to_form(item), "key": key, "errors": errors,
            "data": data, "choices": destination_choices(data), "dest": picker(data),
            "diagram": (diagram(data, sec.diagram_kind, root_key)
                        if sec.diagram_kind and root_key is not None else None),
            **sec.extra}


def edit_page(sec: Section, key: str | None) -> Any:
    """GET shows the form; POST validates and saves (errors next to their fields)."""
    ctx = web()
    if key is not None:
        _check_key(key)
    data = ctx.editor.data()
    if request.method == "GET":
        if key is None:
            return render_template(sec.template, **_context(sec, data, {}, None, {}))
        # Looked up in the data already read (one export per page, not two); these
        # sections hold no secrets.
        items = [it for it in data.get(sec.section, []) or [] if isinstance(it, dict)]
        found = [it for i, it in enumerate(items) if item_key(sec.section, it, i) == key]
        if not found:
            abort(404)
        return render_template(sec.template, **_context(sec, data, found[0], key, {}))
    try:
        posted = parse_form(request.form)
    except FormError as exc:
        flash(_("The form could not be read: %(error)s", error=str(exc)), "error")
        return render_template(sec.template, **_context(sec, data, {}, key, {})), 400
    item = sec.to_item(posted)
    try:
        saved = ctx.editor.save(sec.section, item, key=key, actor=actor())
    except NotFoundError:
        abort(404)
    except ConfigError as exc:
        errors = sec.to_fields(field_errors(exc), item)
        return render_template(sec.template, **_context(sec, data, item, key, errors)), 400
    field_name = LIST_SECTIONS[sec.section]
    if field_name is not None:
        new_key = str(saved[field_name])
    elif key is not None:
        new_key = key
    else:  # a new item of a section without keys is the last one
        new_key = str(len(ctx.editor.items(sec.section)) - 1)
    flash(_("Saved."), "ok")
    return redirect(url_for(f".{sec.name}_edit", key=new_key))


def delete_item(sec: Section, key: str) -> Any:
    """Delete an item; when something still uses it, say what instead."""
    _check_key(key)
    try:
        web().editor.delete(sec.section, key, actor=actor())
    except NotFoundError:
        abort(404)
    except ConfigError as exc:
        problems = "; ".join(f"{p.path}: {p.message}" if p.path else p.message
                             for p in exc.problems[:5])
        flash(_("Not deleted: %(problems)s", problems=problems), "error")
        return redirect(url_for(f".{sec.name}_edit", key=key))
    flash(_("Deleted."), "ok")
    return redirect(url_for(f".{sec.name}_list"))


def list_page(sec: Section, template: str = "routing/list.html") -> Any:
    """Every item of the section, a page at a time."""
    data = web().editor.data()
    items = [it for it in data.get(sec.section, []) or [] if isinstance(it, dict)]
    try:
        page = max(1, int(request.args.get("page", "1")))
    except ValueError:
        page = 1
    pages = max(1, (len(items) + sec.per_page - 1) // sec.per_page)
    page = min(page, pages)
    start = (page - 1) * sec.per_page
    rows = []
    for offset, item in enumerate(items[start:start + sec.per_page]):
        key = item_key(sec.section, item, start + offset)
        rows.append({
            "key": key,
            "cells": [getter(item) for _label, getter in sec.columns],
            "thumb": diagram(data, sec.diagram_kind, key, thumb=True)
            if sec.thumbnails and sec.diagram_kind else None,
        })
    return render_template(template, sec=sec, rows=rows, page=page, pages=pages,
                           headers=[label() for label, _getter in sec.columns])


def move_item(sec: Section, key: str) -> Any:
    """One place up or down (the form's `direction`), then back to the list."""
    _check_key(key)
    offset = {"up": -1, "down": 1}.get(request.form.get("direction", ""))
    if offset is None:
        abort(400)
    try:
        web().editor.move(sec.section, key, offset, actor=actor())
    except NotFoundError:
        abort(404)
    except ConfigError as exc:
        flash("; ".join(str(p) for p in exc.problems), "error")
    return redirect(url_for(f".{sec.name}_list"))


def register(bp: Blueprint, sec: Section) -> None:
    """Add the list, new, edit and delete pages of `sec` to the blueprint (admins only)."""

    def list_view() -> Any:
        return list_page(sec)

    def new_view() -> Any:
        return edit_page(sec, None)

    def edit_view(key: str) -> Any:
        return edit_page(sec, key)

    def delete_view(key: str) -> Any:
        return delete_item(sec, key)

    def move_view(key: str) -> Any:
        return move_item(sec, key)

    base = sec.url
    if sec.ordered:
        bp.add_url_rule(f"{base}/item/<key>/move", f"{sec.name}_move",
                        admin_required(move_view), methods=["POST"])
    bp.add_url_rule(f"{base}/", f"{sec.name}_list", admin_required(list_view))
    bp.add_url_rule(f"{base}/new", f"{sec.name}_new", admin_required(new_view),
                    methods=["GET", "POST"])
    bp.add_url_rule(f"{base}/item/<key>", f"{sec.name}_edit", admin_required(edit_view),
                    methods=["GET", "POST"])
    bp.add_url_rule(f"{base}/item/<key>/delete", f"{sec.name}_delete",
                    admin_required(delete_view), methods=["POST"])
