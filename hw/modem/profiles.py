"""Per-family modem behaviour as data: start-up, audio arming, calls, DTMF, USSD, identification.

The line manager runs these command lists through an AtChannel; nothing here does I/O.
Sources: gsm-modems.md section 1 (what chan_dongle and chan_quectel send, and why).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .ussd import UssdEncoding, request_command


class Family(enum.Enum):
    """Modem families with different AT dialects."""

    QUECTEL = "quectel"
    SIMCOM = "simcom"
    HUAWEI = "huawei"


class DtmfDetection(enum.Enum):
    """Where received DTMF comes from: a modem URC, or our own in-band detector on the audio."""

    URC = "urc"
    INBAND = "inband"


@dataclass(frozen=True)
class InitStep:
    """One start-up command; a failing optional one is logged, a required one fails the start."""

    command: str
    required: bool = True
    timeout: float = 5.0


# Every family: numeric errors (so PIN failures are told apart), caller ID, +CRING, registration
# with cell info, numeric operator, PDU mode SMS into SIM storage announced by +CMTI,
# status reports announced by +CDSI, plain GSM character set for USSD text.
COMMON_INIT = (
    InitStep("ATE0"),
    InitStep("AT+CMEE=1"),
    InitStep("AT+CLIP=1"),
    InitStep("AT+CRC=1", required=False),
    InitStep("AT+CREG=2"),
    InitStep("AT+COPS=3,0", required=False),
    InitStep("AT+CMGF=0"),
    InitStep('AT+CSCS="GSM"', required=False),
    InitStep('AT+CPMS="SM","SM","SM"', required=False),
    InitStep("AT+CNMI=2,1,0,2,0"),
)


@dataclass(frozen=True)
class ModemProfile:
    """What differs between families; methods build the command lines for the line manager."""

    name: str
    family: Family
    vendors: tuple[str, ...]
    models: tuple[str, ...]
    init: tuple[InitStep, ...]
    voice_check: str
    iccid_command: str
    ussd_encoding: UssdEncoding
    dtmf_detection: DtmfDetection
    dtmf_urc: str | None = None
    dtmf_digits: str = "0123456789*#ABCD"
    arm_before_call: tuple[str, ...] = ()
    arm_after_call: tuple[str, ...] = ()
    on_connected: tuple[str, ...] = ()
    on_ended: tuple[str, ...] = ()
    call_state_urcs: tuple[str, ...] = ()
    audio_rate: int = 8000

    def init_commands(self) -> tuple[InitStep, ...]:
        """The whole start-up list: common steps, then the family's own."""
        return COMMON_INIT + self.init

    def dial_sequence(self, number: str, *, withhold: bool = False) -> tuple[str, ...]:
        """Commands to place a voice call, audio arming included where it goes with the dial.

        `withhold` hides the SIM's number from the callee for this call (the `I` modifier).
        """
        if not number or any(ch not in "+0123456789*#" for ch in number):
            raise ValueError(f"not a dialable number: {number!r}")
        clir = "I" if withhold else ""
        return (*self.arm_before_call, f"ATD{number}{clir};", *self.arm_after_call)

    def answer_sequence(self) -> tuple[str, ...]:
        """Commands to answer the ringing call, audio arming included."""
        return (*self.arm_before_call, "ATA", *self.arm_after_call)

    def hangup_command(self, index: int | None = None) -> str:
        """Release a call (the one at index where the family can pick one)."""
        if self.family is Family.QUECTEL and index is not None:
            # Cause 16 = normal clearing; QHUP releases just this call.
            return f"AT+QHUP=16,{index}"
        return "AT+CHUP"

    def dtmf_command(self, digit: str, index: int = 1) -> str:
        """Send one DTMF digit to the far end (ValueError for a digit the family can't send)."""
        digit = digit.upper()
        if len(digit) != 1 or digit not in self.dtmf_digits:
            raise ValueError(f"{self.name} cannot send DTMF {digit!r}")
        if self.family is Family.HUAWEI:
            return f"AT^DTMF={index},{digit}"
        if self.family is Family.QUECTEL:
            return f'AT+VTS="{digit}"'
        return f"AT+VTS={digit}"

    def ussd_command(self, code: str) -> str:
        """AT+CUSD for a request in the family's encoding."""
        return request_command(code, self.ussd_encoding)


QUECTEL_EC25 = ModemProfile(
    name="quectel-ec25",
    family=Family.QUECTEL,
    vendors=("quectel",),
    models=("EC25", "EG25", "EC21", "EG21", "EC20"),
    init=(
        InitStep("AT+CEREG=2", required=False),
        # Signal and call state pushed as +QIND, so no polling is needed.
        InitStep('AT+QINDCFG="csq",1,0', required=False),
        InitStep('AT+QINDCFG="ccinfo",1,0', required=False),
        InitStep("AT+QTONEDET=1", required=False),
        InitStep("AT+QPCMV?"),
    ),
    voice_check="AT+QPCMV?",
    iccid_command="AT+QCCID",
    ussd_encoding=UssdEncoding.TEXT,
    dtmf_detection=DtmfDetection.URC,
    dtmf_urc="+QTONEDET",
    # Re-armed for every call: a stale 1,2 (USB audio) state refuses a direct switch to 1,0.
    arm_before_call=("AT+QPCMV=0", "AT+QPCMV=1,0"),
    call_state_urcs=("+QIND", "NO CARRIER"),
)

SIMCOM_7600 = ModemProfile(
    name="simcom-7600",
    family=Family.SIMCOM,
    vendors=("simcom",),
    models=("SIM7600", "SIMCOM_SIM7600"),
    init=(
        InitStep("AT+CEREG=2", required=False),
        # Call list pushed on every change, DTMF detection as +RXDTMF.
        InitStep("AT+CLCC=1", required=False),
        InitStep("AT+DDET=1", required=False),
        InitStep("AT+CPCMREG?"),
    ),
    voice_check="AT+CPCMREG?",
    iccid_command="AT+CICCID",
    ussd_encoding=UssdEncoding.TEXT,
    dtmf_detection=DtmfDetection.URC,
    dtmf_urc="+RXDTMF",
    # PCM flows only with CPCMREG=1 while the call is active (bg111#276); off after.
    on_connected=("AT+CPCMREG=1",),
    on_ended=("AT+CPCMREG=0",),
    call_state_urcs=("+CLCC", "VOICE CALL", "MISSED_CALL"),
)

HUAWEI_E1550 = ModemProfile(
    name="huawei-e1550",
    family=Family.HUAWEI,
    vendors=("huawei",),
    models=("E1550", "E173", "E171", "E1750", "E155X", "E153"),
    init=(
        # OK here means the firmware has voice enabled (no voice: bg111#171).
        InitStep("AT^CVOICE?"),
    ),
    voice_check="AT^CVOICE?",
    iccid_command="AT+CRSM=176,12258,0,0,10",
    ussd_encoding=UssdEncoding.PACKED_HEX,
    # The E1550 has no DTMF detector: our in-band detector listens to the audio.
    dtmf_detection=DtmfDetection.INBAND,
    dtmf_digits="0123456789*#",
    # The voice port carries audio only after ^DDSETEX=2, sent once the call exists.
    arm_after_call=("AT^DDSETEX=2",),
    call_state_urcs=("^ORIG", "^CONF", "^CONN", "^CEND"),
)

PROFILES = (QUECTEL_EC25, SIMCOM_7600, HUAWEI_E1550)


@dataclass(frozen=True)
class Identification:
    """Which profile fits a modem, and whether its model is one we know."""

    profile: ModemProfile
    known_model: bool


def _clean(text: str) -> str:
    # Some firmwares answer "+CGMM: EC25" or "Manufacturer: huawei".
    return text.split(":", 1)[-1].strip() if ":" in text else text.strip()


def identify(manufacturer: str, model: str) -> Identification | None:
    """The profile for +CGMI/+CGMM answers; None for a vendor we don't drive."""
    vendor = _clean(manufacturer).lower()
    model_name = _clean(model).upper()
    for profile in PROFILES:
        known = any(model_name.startswith(m) for m in profile.models)
        if known or any(v in vendor for v in profile.vendors):
            return Identification(profile, known)
    return None


def by_name(name: str) -> ModemProfile:
    """A profile by its name ('quectel-ec25', 'simcom-7600', 'huawei-e1550')."""
    for profile in PROFILES:
        if profile.name == name:
            return profile
    raise KeyError(name)
