"""The REST API `/api/v1`: JSON, bearer tokens only (no session cookie counts here).

Configuration changes go through the same `ConfigEditor` as the pages, so an item is
validated the same way and its errors carry the same field paths. Live state and actions
(calls, lines, SMS, reload) go to the engine's control API. The document describing all of
it is `/api/v1/openapi.json` (webui/openapi.py).
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from appliance.accounts import verify_api_token
from appliance.config.edit import LIST_SECTIONS, SINGLE_SECTIONS, NotFoundError
from appliance.config.errors import ConfigError
from appliance.control import ControlError, EngineDownError

from .. import apidata
from ..apicore import (
    MAX_BODY,
    ApiError,
    RateLimiter,
    bearer_token,
    from_config_error,
    object_body,
    parse_json_body,
    www_authenticate,
)
from ..auth import actor
from ..context import web
from ..openapi import document

bp = Blueprint("api", __name__, url_prefix="/api/v1")
CSRF_EXEMPT = True  # no cookies are accepted here, so there is nothing to forge

log = logging.getLogger(__name__)

DEFAULT_RATE_LIMIT = (600, 60.0)  # requests per token per window (s); PBX_API_RATE_LIMIT
_PUBLIC = frozenset({"api.openapi"})
_EXTENSION = re.compile(r"[0-9]{2,6}", re.ASCII)
_NUMBER = re.compile(r"\+?[0-9*#]{1,32}", re.ASCII)
_SMS_TO = re.compile(r"\+?[0-9]{2,20}", re.ASCII)
_CALL_ID = re.compile(r"[A-Za-z0-9-]{1,64}", re.ASCII)


def _limiter() -> RateLimiter:
    """The app's per-token limiter (kept with the app, not in a module global)."""
    ext = current_app.extensions
    found = ext.get("pbx_api_limiter")
    if found is None:
        limit, window = current_app.config.get("PBX_API_RATE_LIMIT", DEFAULT_RATE_LIMIT)
        found = ext.setdefault("pbx_api_limiter",
                               RateLimiter(int(limit), float(window), time.monotonic))
    assert isinstance(found, RateLimiter)
    return found


@bp.before_request
def _authenticate() -> None:
    """Bearer token, rate limit, scope: in that order, before any handler runs."""
    if request.endpoint in _PUBLIC:
        return
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        raise ApiError(401, "unauthorized", "send the header Authorization: Bearer <token>",
                       headers={"WWW-Authenticate": www_authenticate()})
    found = verify_api_token(web().db, token)
    if found is None:
        raise ApiError(401, "invalid_token", "the token is unknown, revoked or expired",
                       headers={"WWW-Authenticate": www_authenticate("invalid_token")})
    g.api_token = found
    wait = _limiter().allow(found.id)
    if wait:
        raise ApiError(429, "rate_limited", "too many requests with this token; slow down",
                       headers={"Retry-After": str(max(1, round(wait)))})
    needed = "read" if request.method in ("GET", "HEAD", "OPTIONS") else "write"
    if needed not in found.scopes:
        raise ApiError(403, "insufficient_scope", f"this token lacks the {needed!r} scope",
                       headers={"WWW-Authenticate": www_authenticate("insufficient_scope",
                                                                     scope=needed)})


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> Response:
    response = jsonify(exc.body())
    response.status_code = exc.status
    response.headers.update(exc.headers)
    return response


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    code = exc.code or 500
    name = (exc.name or "error").lower().replace(" ", "_")
    response = jsonify({"error": name, "message": exc.description or exc.name})
    response.status_code = code
    return response


@bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> Response:
    if isinstance(exc, HTTPException):  # Flask picks this handler for them too
        return _http_error(exc)
    log.exception("API %s %s failed", request.method, request.path)
    response = jsonify({"error": "internal", "message": "the box failed to handle this request"})
    response.status_code = 500
    return response


def _body() -> dict[str, Any]:
    """The request's JSON object (415/413/400 as ApiError)."""
    length = request.content_length
    if length is not None and length > MAX_BODY:
        raise ApiError(413, "too_large", f"the body is larger than {MAX_BODY} bytes")
    raw = request.stream.read(MAX_BODY + 1)
    return object_body(parse_json_body(raw, request.headers.get("Content-Type")))


def _no_body() -> None:
    """Actions without a body refuse one that is not JSON, so nothing is silently dropped."""
    if request.content_length:
        _body()


def _list_section(section: str) -> str:
    if section not in LIST_SECTIONS:
        raise ApiError(404, "not_found", f"no configuration section {section!r}")
    return section


def _editing(fn: Callable[[], Any]) -> Any:
    """Run a ConfigEditor call, turning its refusals into API errors."""
    try:
        return fn()
    except NotFoundError as exc:
        raise ApiError(404, "not_found", str(exc.args[0] if exc.args else exc)) from None
    except ConfigError as exc:
        raise from_config_error(exc) from None
    except sqlite3.IntegrityError as exc:
        # The model let through what a table constraint refuses: the input's fault.
        raise ApiError(422, "invalid", f"the database refused the item: {exc}") from None


# --- configuration ---------------------------------------------------------------------
@bp.get("/config/<section>")
def list_items(section: str) -> Any:
    """Every item of a configuration section."""
    return {"items": web().editor.items(_list_section(section))}


@bp.get("/config/<section>/<key>")
def get_item(section: str, key: str) -> Any:
    """One item."""
    sec = _list_section(section)
    return _editing(lambda: web().editor.item(sec, key))


@bp.post("/config/<section>")
def create_item(section: str) -> Any:
    """A new item; 201 with the item as stored."""
    sec = _list_section(section)
    data = _body()
    saved = _editing(lambda: web().editor.save(sec, data, key=None, actor=actor()))
    return saved, 201


@bp.put("/config/<section>/<key>")
def replace_item(section: str, key: str) -> Any:
    """Replace an item (its key may change: the item is renamed)."""
    sec = _list_section(section)
    data = _body()
    return _editing(lambda: web().editor.save(sec, data, key=key, actor=actor()))


@bp.delete("/config/<section>/<key>")
def delete_item(section: str, key: str) -> Any:
    """Remove an item; 422 if something still refers to it."""
    sec = _list_section(section)
    _editing(lambda: web().editor.delete(sec, key, actor=actor()))
    return "", 204


def _settings_section(section: str) -> str:
    if section not in SINGLE_SECTIONS:
        raise ApiError(404, "not_found", f"no settings section {section!r}")
    return section


@bp.get("/settings/<section>")
def get_settings(section: str) -> Any:
    """A settings section (box, repeat_caller, notifications)."""
    return web().editor.settings(_settings_section(section))


@bp.put("/settings/<section>")
def put_settings(section: str) -> Any:
    """Replace a settings section."""
    sec = _settings_section(section)
    data = _body()
    return _editing(lambda: web().editor.set_settings(sec, data, actor=actor()))


# --- the engine ----------------------------------------------------------------------------
def _engine(method: str, path: str, body: Any = None, timeout: float = 5.0) -> Any:
    """Call the engine's control API; 503 when it is down, its own refusals passed on."""
    try:
        return web().engine(method, path, body, timeout=timeout)
    except EngineDownError:
        raise ApiError(503, "engine_down", "the engine is not running") from None
    except ControlError as exc:
        status = exc.status or 502
        if status in (400, 404, 409, 422):
            raise ApiError(422 if status == 400 else status,
                           {404: "not_found", 409: "conflict"}.get(status, "invalid"),
                           str(exc)) from None
        raise ApiError(502, "engine_error", str(exc)) from None


def _items(reply: Any) -> dict[str, Any]:
    return {"items": reply if isinstance(reply, list) else []}


@bp.get("/calls")
def calls() -> Any:
    """Calls in progress."""
    return _items(_engine("GET", "/calls"))


@bp.post("/calls")
def originate() -> Any:
    """Click-to-call: ring the employee's phones, then dial the number once they answer."""
    data = _body()
    fields: dict[str, str] = {}
    extension, number = data.get("extension"), data.get("number")
    if not isinstance(extension, str) or not _EXTENSION.fullmatch(extension):
        fields["extension"] = "an extension: 2-6 digits"
    if not isinstance(number, str) or not _NUMBER.fullmatch(number):
        fields["number"] = "a number to dial: up to 32 digits, * or #, may start with +"
    extra = sorted(set(data) - {"extension", "number"})
    if extra:
        fields[extra[0][:64]] = "unknown field"
    if fields:
        raise ApiError(422, "invalid", next(iter(fields.values())), fields)
    reply = _engine("POST", "/originate", {"extension": extension, "number": number})
    call_id = reply.get("call_id") if isinstance(reply, dict) else None
    if not isinstance(call_id, str):
        raise ApiError(502, "engine_error", "the engine gave no call id")
    return {"call_id": call_id}, 201


def _hangup(call_id: str) -> Any:
    if not _CALL_ID.fullmatch(call_id):
        raise ApiError(404, "not_found", "no such call")
    _no_body()
    _engine("POST", f"/calls/{call_id}/hangup")
    return "", 204


@bp.delete("/calls/<call_id>")
def hangup(call_id: str) -> Any:
    """Hang up a call in progress."""
    return _hangup(call_id)


@bp.post("/calls/<call_id>/hangup")
def hangup_post(call_id: str) -> Any:
    """Hang up a call in progress (for clients that cannot send DELETE)."""
    return _hangup(call_id)


@bp.get("/lines")
def lines() -> Any:
    """Every line's live state."""
    return _items(_engine("GET", "/lines"))


@bp.get("/registrations")
def registrations() -> Any:
    """Phones registered right now."""
    return _items(_engine("GET", "/registrations"))


@bp.post("/reload")
def reload() -> Any:
    """Ask the engine to reload the configuration."""
    _no_body()
    reply = _engine("POST", "/reload", timeout=10.0)
    return reply if isinstance(reply, dict) else {"reloaded": True}


@bp.post("/sms")
def send_sms() -> Any:
    """Send a text message through a SIM line (stored first, then sent)."""
    data = _body()
    fields: dict[str, str] = {}
    if not isinstance(data.get("line"), str) or not 1 <= len(data["line"]) <= 64:
        fields["line"] = "the SIM line's key"
    if not isinstance(data.get("to"), str) or not _SMS_TO.fullmatch(data["to"]):
        fields["to"] = "a phone number: 2-20 digits, may start with +"
    if not isinstance(data.get("text"), str) or not 1 <= len(data["text"]) <= 1600:
        fields["text"] = "1-1600 characters"
    extra = sorted(set(data) - {"line", "to", "text"})
    if extra:
        fields[extra[0][:64]] = "unknown field"
    if fields:
        raise ApiError(422, "invalid", next(iter(fields.values())), fields)
    reply = _engine("POST", "/sms", {k: data[k] for k in ("line", "to", "text")}, timeout=60.0)
    return (reply if isinstance(reply, dict) else {}), 201


# --- history ---------------------------------------------------------------------------------
def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "bad_parameter", f"{name} must be a whole number",
                       {name: "a whole number"}) from None
    if not low <= value <= high:
        raise ApiError(400, "bad_parameter", f"{name} must be {low}-{high}",
                       {name: f"{low}-{high}"})
    return value


def _page() -> apidata.Page:
    return apidata.Page(_int_arg("page", 1, 1, 100000),
                        _int_arg("per_page", 50, 1, apidata.MAX_PER_PAGE))


def _time_arg(name: str) -> datetime | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "bad_parameter", f"{name} must be an ISO 8601 date-time",
                       {name: "an ISO 8601 date-time"}) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _choice_arg(name: str, allowed: tuple[str, ...]) -> str | None:
    raw = request.args.get(name) or None
    if raw is not None and raw not in allowed:
        raise ApiError(400, "bad_parameter", f"{name} must be one of {', '.join(allowed)}",
                       {name: "one of " + ", ".join(allowed)})
    return raw


@bp.get("/history")
def history() -> Any:
    """Call records, newest first, filtered and paged."""
    extension = request.args.get("extension") or None
    if extension is not None and not _EXTENSION.fullmatch(extension):
        raise ApiError(400, "bad_parameter", "extension must be 2-6 digits",
                       {"extension": "2-6 digits"})
    number = request.args.get("number") or None
    if number is not None and len(number) > 40:
        raise ApiError(400, "bad_parameter", "number is too long", {"number": "too long"})
    flt = apidata.CallFilter(
        since=_time_arg("since"), until=_time_arg("until"), number=number, extension=extension,
        direction=_choice_arg("direction", apidata.DIRECTIONS),
        outcome=_choice_arg("outcome", apidata.OUTCOMES))
    return apidata.call_history(web().db.read().conn, flt, _page())


@bp.get("/missed")
def missed() -> Any:
    """Missed calls nobody has called back yet (the list clears itself when someone does)."""
    return apidata.missed_calls(web().db.read().conn, _page())


@bp.get("/sms")
def sms() -> Any:
    """Stored text messages, newest first."""
    line = request.args.get("line") or None
    if line is not None and len(line) > 64:
        raise ApiError(400, "bad_parameter", "line is too long", {"line": "too long"})
    return apidata.sms_list(web().db.read().conn, _page(), line=line)


@bp.get("/openapi.json")
def openapi() -> Any:
    """The OpenAPI 3.1 document of this API (public: it holds no data)."""
    return document()
