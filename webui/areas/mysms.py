"""A user's own SMS: the messages they sent from the web UI, and the form to send one."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l

from ..auth import current_user, login_required
from . import NavItem
from .sms import employee_id, messages_page, page_number, sms_lines

bp = Blueprint("mysms", __name__, url_prefix="/sms/mine")
NAV = [NavItem("mysms.mine", _l("My SMS"), "mine", admin_only=False, order=60)]


@bp.get("/")
@login_required
def mine() -> Any:
    """The messages this user sent (stored with their employee), newest first."""
    user = current_user()
    assert user is not None
    employee = employee_id(user.employee_extension)
    if employee is None:
        if user.role == "administrator":
            return redirect(url_for("sms.index"))
        abort(403)
    page = page_number(request.args.get("page"))
    messages, pages = messages_page("WHERE sms.employee_id = ?", [employee], page)
    return render_template("lines/sms.html", messages=messages, page=min(page, pages),
                           pages=pages, lines=sms_lines(), line="", direction="", args={},
                           mine=True)
