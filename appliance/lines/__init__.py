"""Lines: SIM cards in modems today, SIP trunks and FXO gateways later, behind one interface.

* base: `Line` protocol, `LineState`, `LineCall` (state, outcome -> SIP code), events.
* sim: the SIM line driver over hw.modem (simcall: call reports, simsms: SMS, simussd: USSD).
* discovery: modems by USB path and interface, identified by IMEI.
* manager: `LineManager`, what the box starts, reloads and asks; api: its control routes.
"""

from __future__ import annotations

from .base import (
    BalanceChecked,
    CallStateChanged,
    Capabilities,
    DtmfReceived,
    IncomingCall,
    Line,
    LineAlert,
    LineCall,
    LineCallState,
    LineState,
    LineStateChanged,
    LowBalance,
    Outcome,
    SmsReceived,
    SmsStatusChanged,
)
from .context import LineContext, LineTimers
from .manager import LineManager, read_sim_settings
from .sim import SimLine, SimSettings

__all__ = [
    "BalanceChecked", "CallStateChanged", "Capabilities", "DtmfReceived", "IncomingCall",
    "Line", "LineAlert", "LineCall", "LineCallState", "LineContext", "LineManager",
    "LineState", "LineStateChanged", "LineTimers", "LowBalance", "Outcome", "SimLine",
    "SimSettings", "SmsReceived", "SmsStatusChanged", "read_sim_settings",
]
