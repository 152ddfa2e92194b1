"""GSM/LTE modems: the AT layer. Pure parsers, a thin asyncio engine, profiles, modem state.

* framing: `LineFramer` cuts the byte stream into `Line`s and the `> ` `Prompt`.
* results, calls, network, messages: dataclasses for final results and every line we read;
  urcs: `parse_line`, and `LineRouter` (response line or URC, two-line URCs).
* commands: `Response`, `AtError` and kin; channel: `AtChannel` (one command in flight,
  time limits, URC subscribers, the SMS prompt flow); port: `open_channel(path)`.
* profiles: Quectel EC25, SIMCom SIM7600, Huawei E1550 as data; `identify(cgmi, cgmm)`.
* state: `ModemState` and the pure `apply(state, event)`.
* ussd: request encoding and reply decoding; balance: `parse_balance(text)`.
* ceer: `parse_ceer(line)`, the +CEER release report (the cause of a failed call).
"""

from __future__ import annotations

from .balance import Balance, parse_balance
from .calls import (
    CallAlerting,
    CallConnected,
    CallEnded,
    CallerId,
    CallInfo,
    CallOriginated,
    CallResult,
    CallState,
    Dtmf,
    MissedCall,
    PcmRegistration,
    Ring,
    Urc,
)
from .channel import AtChannel, ModemLink, UrcWatch
from .commands import AtCommandError, AtError, AtTimeout, PortClosed, Response
from .framing import Line, LineFramer, Prompt
from .messages import (
    MessagePushed,
    MessageSent,
    MessageStored,
    StorageFull,
    StoredMessage,
    UssdReply,
)
from .network import (
    Boot,
    Indication,
    OperatorInfo,
    OwnNumber,
    Registration,
    SignalQuality,
    SimStatus,
)
from .profiles import (
    HUAWEI_E1550,
    PROFILES,
    QUECTEL_EC25,
    SIMCOM_7600,
    DtmfDetection,
    Family,
    Identification,
    InitStep,
    ModemProfile,
    identify,
)
from .results import FinalKind, FinalResult, parse_final
from .state import ModemState, StateChange, apply, next_state
from .urcs import LineRouter, UnknownLine, parse_line
from .ussd import UssdEncoding, decode_reply, encode_request

__all__ = [
    "HUAWEI_E1550", "PROFILES", "QUECTEL_EC25", "SIMCOM_7600", "AtChannel", "AtCommandError",
    "AtError", "AtTimeout", "Balance", "Boot", "CallAlerting", "CallConnected", "CallEnded",
    "CallInfo", "CallOriginated", "CallResult", "CallState", "CallerId", "Dtmf",
    "DtmfDetection", "Family", "FinalKind", "FinalResult", "Identification", "Indication",
    "InitStep", "Line", "LineFramer", "LineRouter", "MessagePushed", "MessageSent",
    "MessageStored", "MissedCall", "ModemLink", "ModemProfile", "ModemState", "OperatorInfo",
    "OwnNumber", "PcmRegistration", "PortClosed", "Prompt", "Registration", "Response", "Ring",
    "SignalQuality", "SimStatus", "StateChange", "StorageFull", "StoredMessage", "UnknownLine",
    "Urc", "UrcWatch", "UssdEncoding", "UssdReply", "apply", "decode_reply", "encode_request",
    "identify", "next_state", "parse_balance", "parse_final", "parse_line",
]
