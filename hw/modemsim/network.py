"""The SIM card and the radio network: PIN/PUK, registration, operator and signal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .clock import Timer
from .framing import CmeError, Command, Handler, PlainError
from .profiles import HUAWEI, QUECTEL, SIMCOM

if TYPE_CHECKING:
    from .core import Modem

SIM_STATES = ("READY", "SIM PIN", "SIM PUK", "NOT INSERTED")
PIN_TRIES, PUK_TRIES = 3, 10
DEFAULT_PUK = "12345678"
REGISTER_S = 1.0  # searching after power-on, a PIN or a restored network
SIGNAL_PUSH_S = 10.0
LAC, CELL = "1A2B", "01C0FFEE"

REG_NONE, REG_HOME, REG_SEARCHING = 0, 1, 2


class Network:
    """SIM state and network registration as one modem sees them."""

    def __init__(self, modem: Modem, pin: str | None) -> None:
        self.modem = modem
        self.pin = pin or "1234"
        self.puk = DEFAULT_PUK
        self.sim_state = "SIM PIN" if pin else "READY"
        self.pin_enabled = pin is not None
        self.pin_tries = PIN_TRIES
        self.puk_tries = PUK_TRIES
        self.blocked = False
        self.rssi = 20
        self.available = True  # the network itself (drop_network / restore_network)
        self.cfun = 1
        self.reg = REG_NONE
        self._register_timer: Timer | None = None
        self._signal_timer: Timer | None = None

    # -- state -----------------------------------------------------------------------

    def cpin_text(self) -> str:
        """The +CPIN: value (READY, SIM PIN, SIM PUK; NOT INSERTED for boot URCs)."""
        return self.sim_state

    def require_sim(self) -> None:
        """Raise the +CME ERROR a command needing an unlocked SIM gets."""
        if self.blocked:
            raise CmeError(13)
        code = {"NOT INSERTED": 10, "SIM PIN": 11, "SIM PUK": 12}.get(self.sim_state)
        if code is not None:
            raise CmeError(code)

    def registered(self) -> bool:
        """True when registered (home or roaming)."""
        return self.reg in (1, 5)

    def csq(self) -> int:
        """The rssi +CSQ reports (99 without a network)."""
        return self.rssi if self.available and self.cfun == 1 else 99

    def _can_register(self) -> bool:
        return (self.available and self.cfun == 1 and self.sim_state == "READY"
                and not self.blocked and self.modem.plugged)

    def _set_reg(self, reg: int) -> None:
        if reg == self.reg:
            return
        self.reg = reg
        cfg = self.modem.cfg
        if cfg.creg_n:
            self.modem.urc("+CREG: " + self._reg_fields(reg, cfg.creg_n, lte=False))
        if cfg.cereg_n and self.modem.profile.has_cereg:
            self.modem.urc("+CEREG: " + self._reg_fields(reg, cfg.cereg_n, lte=True))
        if not self.registered():
            self.modem.calls.network_lost()
        else:
            self.modem.sms.network_back()

    def _reg_fields(self, reg: int, n: int, *, lte: bool) -> str:
        if n >= 2 and reg != REG_NONE:
            act = f",{self.modem.profile.act}" if lte else ""
            return f'{reg},"{LAC}","{CELL}"{act}'
        return str(reg)

    def _schedule_register(self, delay: float) -> None:
        if self._register_timer is not None:
            self._register_timer.cancel()
        if not self._can_register():
            self._set_reg(REG_NONE if self.sim_state != "READY" or self.cfun != 1
                          else REG_SEARCHING)
            return
        if delay <= 0:
            self._set_reg(REG_HOME)
            return
        self._set_reg(REG_SEARCHING)

        def done() -> None:
            self._register_timer = None
            if self._can_register():
                self._set_reg(REG_HOME)

        self._register_timer = self.modem.timers.call_later(delay, done)

    def power_on(self, *, immediate: bool) -> None:
        """Start registering (at once when the simulator starts, else after a search)."""
        self.cfun = 1
        self.reg = REG_NONE
        self._schedule_register(0 if immediate else REGISTER_S)
        self._schedule_signal()

    def power_off(self) -> None:
        """Unplugged: no registration, no timers."""
        for timer in (self._register_timer, self._signal_timer):
            if timer is not None:
                timer.cancel()
        self._register_timer = self._signal_timer = None
        self.reg = REG_NONE
        if self.sim_state == "READY" and self.pin_enabled:
            self.sim_state = "SIM PIN"  # a power cycle locks a SIM with a PIN again
            self.pin_tries = PIN_TRIES

    def set_cfun(self, fun: int) -> None:
        """AT+CFUN=0/1/4: radio off or on."""
        self.cfun = fun
        if fun == 1:
            self._schedule_register(REGISTER_S)
        else:
            self._set_reg(REG_NONE)

    # -- the network side (facade) ----------------------------------------------------

    def set_signal(self, rssi: int) -> None:
        """New signal level (0-31, 99 unknown), pushed at once."""
        self.rssi = rssi
        self._push_signal()

    def drop(self) -> None:
        """The network is gone: deregister, calls end, signal 99."""
        self.available = False
        if self._register_timer is not None:
            self._register_timer.cancel()
        if self.sim_state == "READY" and self.cfun == 1:
            self._set_reg(REG_SEARCHING)
        self._push_signal()

    def restore(self) -> None:
        """The network is back: registered again (+CREG: 1)."""
        self.available = True
        self._schedule_register(0)
        self._push_signal()

    def set_sim(self, state: str) -> None:
        """Change the SIM: READY, SIM PIN, SIM PUK or NOT INSERTED."""
        if state not in SIM_STATES:
            raise ValueError(f"SIM state must be one of {SIM_STATES}")
        self.sim_state = state
        self.blocked = False
        if state == "SIM PIN":
            self.pin_enabled = True
            self.pin_tries = PIN_TRIES
        if state == "SIM PUK":
            self.pin_tries = 0
            self.puk_tries = PUK_TRIES
        if self.modem.profile.family == QUECTEL and self.modem.plugged:
            self.modem.urc(f"+CPIN: {state}")
        self._schedule_register(REGISTER_S)

    # -- pushes ----------------------------------------------------------------------

    def signal_urc(self, *, forced: bool = False) -> str | None:
        """The profile's signal URC if enabled (forced: whatever the settings say)."""
        cfg, family, rssi = self.modem.cfg, self.modem.profile.family, self.csq()
        if family == HUAWEI and (cfg.curc or forced):
            return f"^RSSI: {rssi}"
        if family == QUECTEL and (cfg.qindcfg.get("csq") or forced):
            return f'+QIND: "csq",{rssi},99'
        if family == SIMCOM and (cfg.autocsq or forced):
            return f"+CSQ: {rssi},99"
        return None

    def _push_signal(self) -> None:
        line = self.signal_urc()
        if line:
            self.modem.urc(line)

    def _schedule_signal(self) -> None:
        def tick() -> None:
            self._push_signal()
            self._signal_timer = self.modem.timers.call_later(SIGNAL_PUSH_S, tick)

        if self._signal_timer is not None:
            self._signal_timer.cancel()
        self._signal_timer = self.modem.timers.call_later(SIGNAL_PUSH_S, tick)

    # -- commands --------------------------------------------------------------------

    def commands(self) -> dict[str, Handler]:
        """The AT commands this part answers."""
        table: dict[str, Handler] = {
            "+CPIN": self._cpin, "+CREG": self._creg, "+CSQ": self._csq, "+COPS": self._cops,
            "+CNUM": self._cnum, "+CIMI": self._cimi, "+CRSM": self._crsm,
        }
        family = self.modem.profile.family
        if self.modem.profile.has_cereg:
            table["+CEREG"] = self._cereg
        if family == HUAWEI:
            table["^CPIN"] = self._huawei_cpin
            table["^CURC"] = self._curc
        elif family == QUECTEL:
            table["+QCCID"] = self._qccid
            table["+QPINC"] = self._qpinc
            table["+QINDCFG"] = self._qindcfg
        elif family == SIMCOM:
            table["+CICCID"] = self._ciccid
            table["+CCID"] = self._ciccid
            table["+SPIC"] = self._spic
            table["+AUTOCSQ"] = self._autocsq
        return table

    def _cpin(self, cmd: Command) -> list[str] | None:
        if cmd.op == "=?":
            return None
        if self.blocked:
            raise CmeError(13)
        if self.sim_state == "NOT INSERTED":
            raise CmeError(10)
        if cmd.op == "?":
            return [f"+CPIN: {self.sim_state}"]
        if cmd.op != "=":
            raise PlainError("CPIN needs a PIN")
        code, new_pin = cmd.param(0), cmd.param(1)
        if self.sim_state == "READY":
            raise CmeError(3)
        if self.sim_state == "SIM PIN":
            if code == self.pin:
                self._unlocked()
                return None
            self.pin_tries -= 1
            if self.pin_tries <= 0:
                self.sim_state = "SIM PUK"
            raise CmeError(16)
        # SIM PUK: the PUK and a new PIN, or nothing works.
        if not new_pin:
            raise CmeError(12)
        if code == self.puk:
            self.pin = new_pin
            self._unlocked()
            return None
        self.puk_tries -= 1
        if self.puk_tries <= 0:
            self.blocked = True
        raise CmeError(16)

    def _unlocked(self) -> None:
        self.sim_state = "READY"
        self.pin_tries = PIN_TRIES
        self.puk_tries = PUK_TRIES
        self._schedule_register(REGISTER_S)

    def _huawei_cpin(self, cmd: Command) -> list[str]:
        state = self.sim_state
        times = {"SIM PIN": self.pin_tries, "SIM PUK": self.puk_tries}.get(state, "")
        return [f"^CPIN: {state},{times},{self.puk_tries},{self.pin_tries},10,3"]

    def _qpinc(self, cmd: Command) -> list[str]:
        return [f'+QPINC: "SC",{self.pin_tries},{self.puk_tries}', '+QPINC: "P2",3,10']

    def _spic(self, cmd: Command) -> list[str]:
        return [f"+SPIC: {self.pin_tries},{self.puk_tries},3,10"]

    def _creg(self, cmd: Command) -> list[str] | None:
        return self._reg_command(cmd, "+CREG", "creg_n", lte=False)

    def _cereg(self, cmd: Command) -> list[str] | None:
        return self._reg_command(cmd, "+CEREG", "cereg_n", lte=True)

    def _reg_command(self, cmd: Command, name: str, attr: str, *, lte: bool) -> list[str] | None:
        if cmd.op == "=?":
            return [f"{name}: (0-2)"]
        if cmd.op == "?":
            n = getattr(self.modem.cfg, attr)
            return [f"{name}: {n}," + self._reg_fields(self.reg, n, lte=lte)]
        n = cmd.int_param(0, 0)
        if n not in (0, 1, 2):
            raise CmeError(4)
        setattr(self.modem.cfg, attr, n)
        return None

    def _csq(self, cmd: Command) -> list[str]:
        if cmd.op == "=?":
            return ["+CSQ: (0-31,99),(0-7,99)"]
        rssi = self.csq()
        return [f"+CSQ: {rssi},99"]

    def _cops(self, cmd: Command) -> list[str] | None:
        ident, act = self.modem.ident, self.modem.profile.act
        if cmd.op == "=?":
            return [f'+COPS: (2,"{ident.operator}","{ident.operator}","{ident.mcc_mnc}",{act})'
                    ",,(0-4),(0-2)"]
        if cmd.op == "?":
            if not self.registered():
                return ["+COPS: 0"]
            fmt = self.modem.cfg.cops_format
            name = ident.mcc_mnc if fmt == 2 else ident.operator
            return [f'+COPS: 0,{fmt},"{name}",{act}']
        mode = cmd.int_param(0, 0)
        if mode == 3:
            fmt = cmd.int_param(1, 0)
            if fmt not in (0, 1, 2):
                raise CmeError(4)
            self.modem.cfg.cops_format = fmt
        elif mode == 2:
            self._set_reg(REG_NONE)
        elif mode in (0, 1, 4):
            self.require_sim()
            if len(cmd.params) > 1:
                self.modem.cfg.cops_format = cmd.int_param(1, 0)
            if not self.registered():
                self._schedule_register(REGISTER_S)
        else:
            raise CmeError(4)
        return None

    def _cnum(self, cmd: Command) -> list[str]:
        self.require_sim()
        number = self.modem.ident.own_number
        if not number:
            return []
        ton = 145 if number.startswith("+") else 129
        return [f'+CNUM: "","{number}",{ton}']

    def _cimi(self, cmd: Command) -> list[str]:
        self.require_sim()
        return [self.modem.ident.imsi]

    def _iccid_available(self) -> None:
        # EF_ICCID is readable without the PIN; only a missing SIM has none.
        if self.sim_state == "NOT INSERTED":
            raise CmeError(10)

    def _crsm(self, cmd: Command) -> list[str]:
        self._iccid_available()
        if cmd.int_param(0) == 176 and cmd.int_param(1) == 12258:
            digits = self.modem.ident.iccid.ljust(20, "F")
            swapped = "".join(digits[i + 1] + digits[i] for i in range(0, 20, 2))
            return [f'+CRSM: 144,0,"{swapped}"']
        return ["+CRSM: 106,130"]  # 6A82: file not found

    def _qccid(self, cmd: Command) -> list[str]:
        self._iccid_available()
        return [f"+QCCID: {self.modem.ident.iccid}"]

    def _ciccid(self, cmd: Command) -> list[str]:
        self._iccid_available()
        return [f"+ICCID: {self.modem.ident.iccid}"]

    def _curc(self, cmd: Command) -> list[str] | None:
        if cmd.op == "?":
            return [f"^CURC: {int(self.modem.cfg.curc)}"]
        self.modem.cfg.curc = cmd.int_param(0, 1) != 0
        return None

    def _autocsq(self, cmd: Command) -> list[str] | None:
        if cmd.op == "?":
            return [f"+AUTOCSQ: {int(self.modem.cfg.autocsq)},1"]
        self.modem.cfg.autocsq = cmd.int_param(0, 0) == 1
        return None

    def _qindcfg(self, cmd: Command) -> list[str] | None:
        params = cmd.params
        if cmd.op == "=?":
            return ['+QINDCFG: ("all","csq","smsfull","ring","smsincoming","act","ccinfo"),'
                    "(0,1),(0,1)"]
        if not params:
            raise PlainError("QINDCFG needs a type")
        kind = params[0].lower()
        if kind not in ("all", "csq", "smsfull", "ring", "smsincoming", "act", "ccinfo"):
            raise CmeError(4)
        if len(params) == 1:
            return [f'+QINDCFG: "{kind}",{self.modem.cfg.qindcfg.get(kind, 0)}']
        value = cmd.int_param(1)
        kinds = ("csq", "smsfull", "ring", "smsincoming", "act", "ccinfo") \
            if kind == "all" else (kind,)
        for k in kinds:
            self.modem.cfg.qindcfg[k] = value
        return None
