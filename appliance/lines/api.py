"""The lines' part of the control API: GET /lines, GET/POST /sms, POST /lines/{key}/ussd.

Bodies are checked strictly (a JSON object, known fields, bounded printable strings); the
checks are pure (`sms_body`, `ussd_body`) so they can be fuzzed.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from appliance.control import BadRequest, ControlServer, Request

if TYPE_CHECKING:
    from .manager import LineManager

MAX_SMS_TEXT = 1530  # ten concatenated GSM7 parts; longer texts are a mistake, not a message
_NUMBER = re.compile(r"^\+?[0-9]{3,20}$")
_USSD = re.compile(r"^[0-9*#]{2,30}$")
_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def _fields(body: Any, required: tuple[str, ...], limits: dict[str, int]) -> dict[str, str]:
    if not isinstance(body, dict):
        raise BadRequest(f"the body must be a JSON object with: {', '.join(required)}")
    unknown = sorted(str(k)[:40] for k in body if k not in required)
    if unknown:
        raise BadRequest(f"unknown field(s) {unknown[:5]}; expected: {', '.join(required)}")
    out: dict[str, str] = {}
    for key in required:
        value = body.get(key)
        if not isinstance(value, str) or not value:
            raise BadRequest(f"{key!r} must be a non-empty string")
        if len(value) > limits.get(key, 100):
            raise BadRequest(f"{key!r} is too long (at most {limits.get(key, 100)} characters)")
        if key != "text" and not value.isprintable():
            raise BadRequest(f"{key!r} must be printable text")
        out[key] = value
    return out


def sms_body(body: Any) -> tuple[str, str, str]:
    """(line, to, text) from a POST /sms body, or BadRequest. Pure."""
    f = _fields(body, ("line", "to", "text"), {"text": MAX_SMS_TEXT, "to": 21, "line": 40})
    to = "".join(ch for ch in f["to"] if ch not in " -()")
    if not _NUMBER.match(to):
        raise BadRequest("'to' must be a phone number (digits, optionally with a leading +)")
    if not _KEY.match(f["line"]):
        raise BadRequest("'line' must be a line key")
    text = f["text"]
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in text):
        raise BadRequest("'text' must be valid Unicode")
    return f["line"], to, text


def ussd_body(body: Any) -> str:
    """The USSD code of a POST /lines/{key}/ussd body, or BadRequest. Pure."""
    code = _fields(body, ("code",), {"code": 30})["code"]
    if not _USSD.match(code):
        raise BadRequest("'code' must be digits, * and # (like *100#)")
    return code


def register(control: ControlServer, manager: LineManager) -> None:
    """Serve the lines' routes from manager."""

    async def lines(req: Request) -> list[dict[str, Any]]:
        if req.body is not None:
            raise BadRequest("GET /lines takes no body")
        return manager.summary()

    async def sms_list(req: Request) -> list[dict[str, Any]]:
        if req.body is not None:
            raise BadRequest("GET /sms takes no body")
        line = req.query.get("line") or None
        raw = req.query.get("limit", "100")
        if not raw.isdigit():
            raise BadRequest("limit must be a number")
        return await manager.list_sms(line, int(raw))

    async def sms_send(req: Request) -> dict[str, Any]:
        line, to, text = sms_body(req.body)
        try:
            return await manager.send_sms(line, to, text)
        except KeyError:
            raise BadRequest(f"no line {line!r}", 404) from None
        except ValueError as exc:
            raise BadRequest(str(exc), 409) from None

    async def ussd(req: Request) -> dict[str, Any]:
        key = req.params.get("key", "")
        code = ussd_body(req.body)
        line = manager.get(key)
        if line is None:
            raise BadRequest(f"no line {key!r}", 404)
        try:
            result = await line.ussd(code)
        except RuntimeError as exc:
            raise BadRequest(f"USSD {code} on {key}: {exc}", 409) from None
        return {"line": key, "code": code, "text": result.text, "status": result.status,
                "balance": None if result.amount is None else float(result.amount),
                "currency": result.currency}

    control.route("GET", "/lines", lines)
    control.route("GET", "/sms", sms_list)
    control.route("POST", "/sms", sms_send)
    control.route("POST", "/lines/{key}/ussd", ussd)
