"""The REST API's pure parts: JSON body parsing with limits, errors, bearer headers, rate limits.

No Flask here, so the body parser can be fuzzed directly and the rate limiter tested with a
fake clock.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from appliance.config.errors import ConfigError

MAX_BODY = 256 * 1024  # the largest configuration item is a few KiB; a body of MiBs is an attack
MAX_DEPTH = 32  # objects and lists nested deeper than any configuration item
MAX_STRING = 16 * 1024  # per string value; names and texts are far shorter


class ApiError(Exception):
    """An API request refused: HTTP status, a short code, a message, per-field messages."""

    def __init__(self, status: int, code: str, message: str,
                 fields: dict[str, str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}
        self.headers = headers or {}  # WWW-Authenticate, Retry-After

    def body(self) -> dict[str, Any]:
        """The JSON error body every API error has."""
        out: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.fields:
            out["fields"] = self.fields
        return out


def from_config_error(exc: ConfigError) -> ApiError:
    """A ConfigError as a 422 with its problems by path (the empty path: the whole item)."""
    fields: dict[str, str] = {}
    for problem in exc.problems:
        path = problem.path
        fields[path] = f"{fields[path]}; {problem.message}" if path in fields else problem.message
    first = exc.problems[0].message if exc.problems else str(exc)
    return ApiError(422, "invalid", first, fields)


def _reject_constant(name: str) -> Any:
    raise ApiError(400, "bad_json", f"{name} is not JSON")


def _check_shape(value: Any) -> None:
    """Refuse values nested too deep or with huge strings (iteratively: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ApiError(400, "too_deep", f"the body is nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, str):
            if len(node) > MAX_STRING:
                raise ApiError(413, "too_large",
                               f"a string is longer than {MAX_STRING} characters")
        elif isinstance(node, dict):
            for key, item in node.items():
                if len(key) > MAX_STRING:
                    raise ApiError(413, "too_large", "a field name is too long")
                stack.append((item, depth + 1))
        elif isinstance(node, list):
            stack.extend((item, depth + 1) for item in node)


def parse_json_body(raw: bytes, content_type: str | None) -> Any:
    """The request body as JSON data, or ApiError (415 not JSON, 413 too large, 400 bad)."""
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime != "application/json" and not (mime.startswith("application/")
                                            and mime.endswith("+json")):
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    if len(raw) > MAX_BODY:
        raise ApiError(413, "too_large", f"the body is larger than {MAX_BODY} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "bad_json", "the body is not UTF-8") from None
    if not text.strip():
        raise ApiError(400, "bad_json", "the body is empty")
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ApiError:
        raise
    except RecursionError:
        raise ApiError(400, "too_deep", "the body is nested too deeply") from None
    except ValueError as exc:
        raise ApiError(400, "bad_json", f"the body is not valid JSON: {exc}") from None
    _check_shape(value)
    return value


def object_body(value: Any) -> dict[str, Any]:
    """The body must be a JSON object."""
    if not isinstance(value, dict):
        raise ApiError(400, "bad_body", "the body must be a JSON object")
    return value


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


def www_authenticate(error: str | None = None, description: str = "",
                     scope: str = "") -> str:
    """The WWW-Authenticate header of a 401/403 (RFC 6750)."""
    parts = ['Bearer realm="pbx"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append(f'error_description="{description}"')
    if scope:
        parts.append(f'scope="{scope}"')
    return ", ".join(parts)


@dataclass
class RateLimiter:
    """At most `limit` requests per `window_s` seconds per key (a sliding window in memory)."""

    limit: int
    window_s: float
    clock: Callable[[], float]
    _seen: dict[Any, deque[float]] = field(default_factory=dict)
    # The web server answers on several threads at once.
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def allow(self, key: Any) -> float:
        """0.0 if the request may go on (and is counted), else the seconds until it may."""
        with self._lock:
            return self._allow(key, self.clock())

    def _allow(self, key: Any, now: float) -> float:
        times = self._seen.setdefault(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if len(times) >= self.limit:
            return max(0.001, times[0] + self.window_s - now)
        times.append(now)
        if len(self._seen) > 10_000:  # forget idle keys so the table cannot grow forever
            idle = now - self.window_s
            for stale in [k for k, v in self._seen.items() if not v or v[-1] <= idle]:
                del self._seen[stale]
        return 0.0
