"""The three modem families the simulator plays, as data: identity, defaults and dialect.

Behaviour that differs by more than a string (call URCs, audio arming, USSD encoding) is
keyed on `family` in the module that owns it; this module only says what each family is.
"""

from __future__ import annotations

from dataclasses import dataclass

HUAWEI = "huawei"
QUECTEL = "quectel"
SIMCOM = "simcom"


@dataclass(frozen=True)
class Profile:
    """One modem model: what it says about itself and how its dialect differs."""

    name: str
    family: str
    manufacturer: str
    model: str
    revision: str
    # `+CME ERROR` is governed by AT+CMEE; huawei answers unknown commands with its own text.
    unknown_command: str | None
    cmee_default: int
    # Access technology in +COPS? (2 UTRAN for the 3G stick, 7 E-UTRAN for the LTE modules).
    act: int
    has_cereg: bool
    # USB interface names of the AT and audio ports in the by-imei links (udev stand-in).
    at_interface: str
    audio_interface: str
    # What the modem does when its SMS store is full: push ^SMMEMFULL or refuse with 322.
    sms_full_urc: bool
    # Incoming DTMF: the URC the modem's own detector sends, if it has one.
    dtmf_detector: str | None
    boot_urcs: tuple[str, ...]

    def ati(self, imei: str) -> list[str]:
        """The lines ATI answers."""
        if self.family == QUECTEL:
            return [self.manufacturer, self.model, f"Revision: {self.revision}"]
        lines = [f"Manufacturer: {self.manufacturer}", f"Model: {self.model}",
                 f"Revision: {self.revision}", f"IMEI: {imei}"]
        caps = "+CGSM,+DS,+ES" if self.family == HUAWEI else "+CGSM"
        return [*lines, f"+GCAP: {caps}"]


PROFILES: dict[str, Profile] = {
    "huawei-e1550": Profile(
        name="huawei-e1550", family=HUAWEI, manufacturer="huawei", model="E1550",
        revision="11.608.12.02.143", unknown_command="COMMAND NOT SUPPORT", cmee_default=0,
        act=2, has_cereg=False, at_interface="if02", audio_interface="if01",
        sms_full_urc=True, dtmf_detector=None,
        boot_urcs=("^BOOT:20483128,0,0,0,75", "^SIMST:{simst}", "^SRVST:2"),
    ),
    "quectel-ec25": Profile(
        name="quectel-ec25", family=QUECTEL, manufacturer="Quectel", model="EC25",
        revision="EC25EFAR06A06M4G", unknown_command=None, cmee_default=1,
        act=7, has_cereg=True, at_interface="if02", audio_interface="if01",
        sms_full_urc=False, dtmf_detector="+QTONEDET",
        boot_urcs=("RDY", "+CFUN: 1", "+CPIN: {cpin}", "+QUSIM: 1", "+QIND: SMS DONE"),
    ),
    "simcom-7600": Profile(
        name="simcom-7600", family=SIMCOM, manufacturer="SIMCOM INCORPORATED",
        model="SIMCOM_SIM7600G-H", revision="LE20B04SIM7600G22", unknown_command=None,
        cmee_default=0, act=7, has_cereg=True, at_interface="if02", audio_interface="if01",
        sms_full_urc=False, dtmf_detector="+RXDTMF",
        boot_urcs=("RDY", "+CPIN: {cpin}", "SMS DONE", "PB DONE"),
    ),
}


def get(name: str) -> Profile:
    """The profile called name; raises ValueError naming the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ValueError(f"unknown modem profile {name!r} (known: {known})") from None
