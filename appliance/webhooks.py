"""The webhook destination: ask an outside service (a CRM, a script) where a call goes.

The box POSTs a small JSON document about the call; the service answers with a destination
in the configuration's own notation, or says it has no opinion:

    request   POST <url>   Content-Type: application/json
              X-PBX-Webhook: <webhook key>
              X-PBX-Signature: sha256=<hex HMAC-SHA256 of the exact body under the secret>
              {"event": "call.route", "webhook": "crm-router", "call_id": "...",
               "caller": "+79161234567", "dialled": "+74955550001", "line": "trunk1",
               "started_at": "2026-11-23T10:00:00.000+00:00"}
    reply     200 {"destination": "employee:101"} | {"destination": {"department": "sales"}}
              | {"destination": {"external": "+79160000000", "line": "sim1"}}
              | {"destination": null} (no opinion: the flow goes on) | 204 (the same)

Anything else is an error (`WebhookError`) and the plan takes the step's failure branch:
a timeout, a status other than 2xx (redirects are not followed), a reply over
`MAX_REPLY` bytes, a body that is not that JSON object, an unknown destination kind, or a
`webhook` destination (a webhook may not hand the call to another webhook). The signature
header is sent only when the webhook has a secret. HTTPS certificates are verified; proxy
settings from the environment are ignored (the box talks to the service directly).

The request runs in a worker thread (urllib). The caller waits at most the timeout; the
thread checks the same deadline between reads (each read is bounded by the timeout too), so
a server that trickles bytes is cut off and the thread ends within twice the timeout.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.client
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from .config.destination import Destination
from .routing.snapshot import Dest, Webhook

MAX_REPLY = 16 * 1024  # bytes; a destination is a few dozen
SIGNATURE_HEADER = "X-PBX-Signature"
_CHUNK = 4096
# Kinds a webhook may name: everything a flow may, except asking a webhook again.
_REFUSED_KINDS = frozenset({"webhook"})


class WebhookError(Exception):
    """The webhook gave no usable answer (the message says why)."""


@dataclass(frozen=True)
class WebhookCall:
    """What the webhook is told about the call."""

    call_id: str
    caller: str
    dialled: str
    line: str | None
    started_at: datetime


def request_body(hook: Webhook, call: WebhookCall) -> bytes:
    """The JSON document POSTed for a call (compact, UTF-8)."""
    started = call.started_at.astimezone(UTC).isoformat(timespec="milliseconds")
    doc = {"event": "call.route", "webhook": hook.key, "call_id": call.call_id,
           "caller": call.caller, "dialled": call.dialled, "line": call.line,
           "started_at": started}
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def signature(secret: str, body: bytes) -> str:
    """The signature header's value: 'sha256=' and the hex HMAC-SHA256 of the body."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def parse_reply(body: bytes) -> Dest | None:
    """The destination a webhook's reply names; None for no opinion; WebhookError if bad."""
    if len(body) > MAX_REPLY:
        raise WebhookError(f"reply is larger than {MAX_REPLY} bytes")
    try:
        doc: Any = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise WebhookError(f"reply is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise WebhookError("reply must be a JSON object like {\"destination\": \"employee:101\"}")
    extra = sorted(str(k) for k in doc if k != "destination")
    if "destination" not in doc or extra:
        wrong = f" (unexpected: {', '.join(extra)})" if extra else ""
        raise WebhookError(f"reply must have exactly the key 'destination'{wrong}")
    value = doc["destination"]
    if value is None:
        return None
    if not isinstance(value, str | dict):
        raise WebhookError("destination must be a string like 'employee:101', an object like "
                           "{\"department\": \"sales\"}, or null")
    try:
        dest = Destination.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(str(e.get("msg", "")) for e in exc.errors()[:3])
        raise WebhookError(f"destination {_short(value)} is not valid: {problems}") from None
    if dest.kind in _REFUSED_KINDS:
        raise WebhookError(f"a webhook may not send the call to '{dest.kind}'")
    out = Dest.of(dest)
    assert out is not None
    return out


def _short(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer like any other non-2xx: not followed."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> None:
        """Never follow (urllib then reports the 3xx as an HTTPError)."""
        return None


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
    """POST and read the reply, all within `timeout` seconds (runs in a worker thread)."""
    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with opener.open(req, timeout=timeout) as resp:
            status = int(resp.status)
            chunks: list[bytes] = []
            size = 0
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WebhookError(f"no complete reply within {timeout:g} s")
                chunk = resp.read1(_CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > MAX_REPLY:
                    raise WebhookError(f"reply is larger than {MAX_REPLY} bytes")
                chunks.append(chunk)
            return status, b"".join(chunks)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise WebhookError(f"the webhook answered HTTP {exc.code} {exc.reason}") from None
    except TimeoutError:
        raise WebhookError(f"no reply within {timeout:g} s") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise WebhookError(f"no reply within {timeout:g} s") from None
        raise WebhookError(f"cannot reach the webhook: {exc.reason}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise WebhookError(f"the webhook connection failed: {exc!r}") from None


async def ask_webhook(hook: Webhook, call: WebhookCall, timeout: float) -> Dest | None:
    """Ask `hook` where `call` goes: a destination, or None when it has no opinion."""
    body = request_body(hook, call)
    headers = {"Content-Type": "application/json", "User-Agent": "pbx-appliance",
               "X-PBX-Webhook": hook.key}
    if hook.secret:
        headers[SIGNATURE_HEADER] = signature(hook.secret, body)
    try:
        # The thread keeps its own deadline; this one frees the call even if it lingers.
        status, reply = await asyncio.wait_for(
            asyncio.to_thread(_post, hook.url, body, headers, timeout), timeout + 0.5)
    except TimeoutError:
        raise WebhookError(f"no reply within {timeout:g} s") from None
    if not 200 <= status < 300:
        raise WebhookError(f"the webhook answered HTTP {status}")
    if status == 204:
        return None
    return parse_reply(reply)
