"""Pure helpers of the lines pages: signal bars, state badges, config merged with live state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask_babel import lazy_gettext as _l

KINDS = ("sim", "sip_trunk", "fxo_gateway")
# Engine states (GET /lines and GET /trunks) -> badge class.
_OK = {"ready", "in_call", "registered", "ip_authenticated"}
_WARN = {"starting", "resetting", "registering", "disabled", "unregistered", "unassigned"}

# The engine's state words of SIM lines (LineState), their calls (LineCallState), trunk
# registrations (RegState) and modems no line claims, as the admin reads them; a word not
# listed is shown as it is.
STATE_LABELS = {
    "disabled": _l("disabled"),
    "down": _l("down"),
    "starting": _l("starting"),
    "ready": _l("ready"),
    "in_call": _l("in a call"),
    "resetting": _l("resetting"),
    "failed": _l("failed"),
    "unassigned": _l("modem without a line"),
    "unregistered": _l("not registered"),
    "registering": _l("registering"),
    "registered": _l("registered"),
    "ip_authenticated": _l("by IP address"),
    "dialing": _l("dialing"),
    "ringing": _l("ringing"),
    "alerting": _l("ringing out"),
    "active": _l("talking"),
}


def signal_bars(csq: Any) -> int | None:
    """0-5 bars from a +CSQ RSSI (0-31; 99 or anything else: unknown)."""
    if isinstance(csq, bool) or not isinstance(csq, int) or not 0 <= csq <= 31:
        return None
    for bars, floor in ((5, 25), (4, 20), (3, 15), (2, 10), (1, 2)):
        if csq >= floor:
            return bars
    return 0


def badge(state: Any) -> str:
    """The badge class (ok, warn, bad) of an engine state."""
    if state in _OK:
        return "ok"
    if state in _WARN:
        return "warn"
    return "bad"


@dataclass
class LineView:
    """One line as the page shows it: its configuration and what the engine says now."""

    key: str
    kind: str
    config: dict[str, Any]
    live: dict[str, Any] | None = None
    bars: int | None = None
    balance_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def state(self) -> str | None:
        """The engine's state word, None when it does not know the line (yet)."""
        return None if self.live is None else self.live.get("state")


def merge(config: list[dict[str, Any]], sims: list[Any] | None, trunks: list[Any] | None,
          balances: dict[str, dict[str, Any]] | None = None) -> tuple[list[LineView],
                                                                       list[dict[str, Any]]]:
    """Config lines with their live state; also the modems no line claims. Pure.

    `sims`/`trunks` are GET /lines and GET /trunks replies (None when the engine is down);
    anything malformed in them is ignored rather than trusted.
    """
    by_key: dict[str, dict[str, Any]] = {}
    unassigned: list[dict[str, Any]] = []
    for item in sims or []:
        if not isinstance(item, dict):
            continue
        if item.get("state") == "unassigned" or item.get("key") is None:
            unassigned.append(item)
        elif isinstance(item.get("key"), str):
            by_key[item["key"]] = item
    for item in trunks or []:
        if isinstance(item, dict) and isinstance(item.get("line"), str):
            by_key[item["line"]] = item
    views = []
    for line in config:
        key = str(line.get("key"))
        live = by_key.get(key)
        view = LineView(key=key, kind=str(line.get("kind")), config=line, live=live)
        if live is not None and view.kind == "sim":
            view.bars = signal_bars(live.get("signal"))
        stored = (balances or {}).get(key)
        if stored is not None:
            view.balance_at = stored.get("at")
            if live is not None and not live.get("balance"):
                live["balance"] = {"amount": stored.get("amount"),
                                   "currency": stored.get("currency")}
        views.append(view)
    return views, unassigned


def line_data(form: dict[str, Any], kind: str, stored: dict[str, Any] | None) -> dict[str, Any]:
    """The item to save from a parsed form: its kind, and the stored `options` kept. Pure."""
    data = {k: v for k, v in form.items() if k not in ("kind", "options")}
    data["kind"] = kind
    if stored is not None and stored.get("options"):
        data["options"] = stored["options"]
    return data


def strip_kind(errors: dict[str, str], kind: str) -> dict[str, str]:
    """Error paths without the union tag pydantic puts first (`sim.imei` -> `imei`). Pure."""
    out: dict[str, str] = {}
    for path, message in errors.items():
        if path == kind:
            path = ""
        elif path.startswith(kind + "."):
            path = path[len(kind) + 1:]
        out[path] = f"{out[path]}; {message}" if path in out else message
    return out
