"""SMS in PDU mode: the SM/ME/SR stores, delivery from the network, sending and reports."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import gsm7, pdu
from .clock import Timer
from .framing import CmeError, CmsError, Command, Handler, Prompt, Reply

if TYPE_CHECKING:
    from .core import Modem

STORES = ("SM", "ME", "SR")
ACK_WAIT_S = 15.0  # +CMT with CSMS=1: pushed again without AT+CNMA in this time
MAX_REPUSH = 3
REPORT_AFTER_S = 1.0
REDELIVER_S = 0.2  # the network retries a held message this soon after space frees up
PART_GAP_S = 0.05
# +CMS ERROR codes (27.005 3.2.5).
CMS_OP_NOT_ALLOWED, CMS_OP_NOT_SUPPORTED, CMS_INVALID_PDU = 302, 303, 304
CMS_SIM_NOT_INSERTED, CMS_SIM_PIN, CMS_SIM_PUK, CMS_SIM_FAILURE = 310, 311, 316, 313
CMS_INVALID_INDEX, CMS_MEMORY_FULL, CMS_NO_NETWORK, CMS_NO_CNMA = 321, 322, 331, 340


@dataclass
class Stored:
    """A message in a store: stat (0 unread, 1 read, 2 unsent, 3 sent) and its PDU hex."""

    stat: int
    pdu: str

    @property
    def length(self) -> int:
        """TPDU octets (SMSC field excluded)."""
        return pdu.tpdu_length(self.pdu)


class Store:
    """One message store with a fixed number of slots, indexed from 0 as on the SIM."""

    def __init__(self, name: str, capacity: int) -> None:
        self.name = name
        self.capacity = capacity
        self.slots: dict[int, Stored] = {}

    def add(self, stat: int, pdu_hex: str) -> int | None:
        """Store a message in the lowest free slot; None when full."""
        for idx in range(self.capacity):
            if idx not in self.slots:
                self.slots[idx] = Stored(stat, pdu_hex)
                return idx
        return None

    @property
    def full(self) -> bool:
        """True when every slot is taken."""
        return len(self.slots) >= self.capacity


@dataclass
class _Held:
    kind: str  # "deliver" or "report"
    pdu: str
    direct: bool


@dataclass
class _Unacked:
    pdu: str
    pushes: int
    timer: Timer | None = None


class Sms:
    """The modem's SMS service."""

    def __init__(self, modem: Modem, capacity: int) -> None:
        self.modem = modem
        self.stores = {name: Store(name, capacity) for name in STORES}
        self.cpms = ["SM", "SM", "SM"]
        self.smsc = modem.ident.smsc
        self.next_mr = 0
        self.sent: list[pdu.Submit] = []
        self.held: list[_Held] = []
        self._unacked: list[_Unacked] = []
        self._refs: dict[str, int] = {}

    def reset(self) -> None:
        """Power cycle: unacknowledged pushes go back to the network to try again."""
        for item in self._unacked:
            if item.timer is not None:
                item.timer.cancel()
            self.held.append(_Held("deliver", item.pdu, True))
        self._unacked.clear()

    # -- the network side ------------------------------------------------------------

    def deliver(self, sender: str, text: str, *, parts_order: list[int] | None,
                drop_part: int | None, direct: bool, alnum: bool,
                part_gap: float = PART_GAP_S) -> list[str]:
        """Send a message to the modem; returns its PDUs in part order (dropped one too)."""
        ref = self._refs.get(sender, self.modem.rng.randrange(256))
        self._refs[sender] = (ref + 1) % 256
        pdus = pdu.build_delivers(sender, text, self.modem.network_time(),
                                  smsc=self.smsc, ref=ref, alnum=alnum)
        order = list(parts_order) if parts_order else list(range(1, len(pdus) + 1))
        if sorted(order) != list(range(1, len(pdus) + 1)):
            raise ValueError(f"parts_order must list parts 1..{len(pdus)} once each")
        sequence = [seq for seq in order if seq != drop_part]
        for k, seq in enumerate(sequence):
            item = _Held("deliver", pdus[seq - 1], direct)
            self.modem.timers.call_later(k * part_gap, functools.partial(self._arrive, item))
        return pdus

    def network_back(self) -> None:
        """Registered again: the network retries what it holds."""
        self._retry_held()

    def _retry_held(self) -> None:
        held, self.held = self.held, []
        for item in held:
            self._arrive(item)

    def _arrive(self, item: _Held) -> None:
        m = self.modem
        if not m.plugged or not m.network.registered():
            self.held.append(item)
            return
        if item.kind == "report":
            self._report_arrives(item)
            return
        if item.direct or m.cfg.cnmi[1] == 2:
            self._push(_Unacked(item.pdu, 0))
            return
        store = self.stores[self.cpms[2]]
        idx = store.add(0, item.pdu)
        if idx is None:
            # Full: the network keeps the message and retries once space frees up; huawei
            # says so with ^SMMEMFULL, the others just go quiet (wdoekes#47).
            self.held.append(item)
            if m.profile.sms_full_urc:
                m.urc(f'^SMMEMFULL: "{store.name}"')
            return
        if m.cfg.cnmi[1] in (1, 3):
            m.urc(f'+CMTI: "{store.name}",{idx}')

    def _push(self, item: _Unacked) -> None:
        m = self.modem
        m.urc(f"+CMT: ,{pdu.tpdu_length(item.pdu)}\r\n{item.pdu}")
        if m.cfg.csms != 1:
            return
        item.pushes += 1
        self._unacked.append(item)

        def again() -> None:
            if item in self._unacked:
                self._unacked.remove(item)
                if item.pushes <= MAX_REPUSH and self.modem.plugged:
                    self._push(item)

        item.timer = m.timers.call_later(ACK_WAIT_S, again)

    def _report_arrives(self, item: _Held) -> None:
        m = self.modem
        ds = m.cfg.cnmi[3]
        if ds == 1:
            m.urc(f"+CDS: {pdu.tpdu_length(item.pdu)}\r\n{item.pdu}")
            return
        idx = self.stores["SR"].add(0, item.pdu)
        if idx is not None and ds == 2:
            m.urc(f'+CDSI: "SR",{idx}')

    # -- commands --------------------------------------------------------------------

    def commands(self) -> dict[str, Handler]:
        """The AT commands this part answers."""
        return {
            "+CMGF": self._cmgf, "+CPMS": self._cpms, "+CNMI": self._cnmi,
            "+CSMS": self._csms, "+CSCA": self._csca, "+CMGR": self._cmgr,
            "+CMGD": self._cmgd, "+CMGL": self._cmgl, "+CMGS": self._cmgs,
            "+CMGW": self._cmgw, "+CNMA": self._cnma,
        }

    def _require_sim(self) -> None:
        try:
            self.modem.network.require_sim()
        except CmeError as exc:
            code = {10: CMS_SIM_NOT_INSERTED, 11: CMS_SIM_PIN, 12: CMS_SIM_PUK}.get(
                exc.code, CMS_SIM_FAILURE)
            raise CmsError(code) from None

    def _pdu_mode(self) -> None:
        if self.modem.cfg.cmgf != 0:
            raise CmsError(CMS_OP_NOT_ALLOWED)  # text mode is not simulated

    def _cmgf(self, cmd: Command) -> list[str] | None:
        if cmd.op == "?":
            return [f"+CMGF: {self.modem.cfg.cmgf}"]
        if cmd.op == "=?":
            return ["+CMGF: (0,1)"]
        value = cmd.int_param(0, 0)
        if value not in (0, 1):
            raise CmsError(CMS_OP_NOT_SUPPORTED)
        self.modem.cfg.cmgf = value
        return None

    def _usage(self) -> list[str]:
        out = []
        for name in self.cpms:
            store = self.stores[name]
            out.append(f"{len(store.slots)},{store.capacity}")
        return out

    def _cpms(self, cmd: Command) -> list[str]:
        if cmd.op == "=?":
            return ['+CPMS: ("SM","ME","SR"),("SM","ME"),("SM","ME")']
        self._require_sim()
        if cmd.op == "?":
            parts = [f'"{name}",{usage}' for name, usage in zip(self.cpms, self._usage(),
                                                                 strict=True)]
            return ["+CPMS: " + ",".join(parts)]
        names = [p.upper() for p in cmd.params]
        if not names or len(names) > 3 or any(n not in STORES for n in names):
            raise CmsError(CMS_OP_NOT_ALLOWED)
        if any(n == "SR" for n in names[1:]):
            raise CmsError(CMS_OP_NOT_ALLOWED)  # reports are only read, never written
        self.cpms[:len(names)] = names
        return ["+CPMS: " + ",".join(self._usage())]

    def _cnmi(self, cmd: Command) -> list[str] | None:
        cfg = self.modem.cfg
        if cmd.op == "?":
            return ["+CNMI: " + ",".join(str(v) for v in cfg.cnmi)]
        if cmd.op == "=?":
            return ["+CNMI: (0-2),(0-3),(0,2),(0-2),(0,1)"]
        values = list(cfg.cnmi)
        for i in range(min(len(cmd.params), 5)):
            values[i] = cmd.int_param(i, values[i])
        cfg.cnmi = values
        return None

    def _csms(self, cmd: Command) -> list[str]:
        cfg = self.modem.cfg
        if cmd.op == "?":
            return [f"+CSMS: {cfg.csms},1,1,1"]
        if cmd.op == "=?":
            return ["+CSMS: (0,1)"]
        value = cmd.int_param(0, 0)
        if value not in (0, 1):
            raise CmsError(CMS_OP_NOT_SUPPORTED)
        cfg.csms = value
        return ["+CSMS: 1,1,1"]

    def _csca(self, cmd: Command) -> list[str] | None:
        if cmd.op == "?":
            ton = 145 if self.smsc.startswith("+") else 129
            return [f'+CSCA: "{self.smsc}",{ton}']
        self.smsc = cmd.param(0)
        return None

    def _read_store(self) -> Store:
        self._require_sim()
        self._pdu_mode()
        return self.stores[self.cpms[0]]

    def _cmgr(self, cmd: Command) -> list[str]:
        store = self._read_store()
        idx = cmd.int_param(0)
        msg = store.slots.get(idx)
        if msg is None:
            raise CmsError(CMS_INVALID_INDEX)
        line = f"+CMGR: {msg.stat},,{msg.length}\r\n{msg.pdu}"
        if msg.stat == 0:
            msg.stat = 1
        return [line]

    def _cmgd(self, cmd: Command) -> list[str] | None:
        if cmd.op == "=?":
            return [f"+CMGD: (0-{self.stores[self.cpms[0]].capacity - 1}),(0-4)"]
        store = self._read_store()
        idx, flag = cmd.int_param(0, 0), cmd.int_param(1, 0)
        if flag == 0:
            if not 0 <= idx < store.capacity:
                raise CmsError(CMS_INVALID_INDEX)
            store.slots.pop(idx, None)
        else:
            # 1: read, 2: read and sent, 3: also unsent, 4: everything.
            doomed = {1: {1}, 2: {1, 3}, 3: {1, 2, 3}, 4: {0, 1, 2, 3}}.get(flag)
            if doomed is None:
                raise CmsError(CMS_OP_NOT_ALLOWED)
            for i, msg in list(store.slots.items()):
                if msg.stat in doomed:
                    del store.slots[i]
        if self.held and not store.full:
            self.modem.timers.call_later(REDELIVER_S, self._retry_held)
        return None

    def _cmgl(self, cmd: Command) -> list[str]:
        if cmd.op == "=?":
            return ["+CMGL: (0-4)"]
        store = self._read_store()
        wanted = cmd.int_param(0, 0)
        if wanted not in (0, 1, 2, 3, 4):
            raise CmsError(CMS_OP_NOT_ALLOWED)
        lines = []
        for idx, msg in sorted(store.slots.items()):
            if wanted == 4 or msg.stat == wanted:
                lines.append(f"+CMGL: {idx},{msg.stat},,{msg.length}\r\n{msg.pdu}")
                if msg.stat == 0:
                    msg.stat = 1
        return lines

    def _prompt(self, cmd: Command, kind: str) -> Reply | list[str]:
        if cmd.op == "=?":
            return []
        self._pdu_mode()
        length = cmd.int_param(0)
        if not 1 <= length <= 180:
            raise CmsError(CMS_INVALID_PDU)
        stat = cmd.int_param(1, 2) if kind == "write" else 2
        return Reply(lines=[], final=None, prompt=Prompt(kind, length, stat))

    def _cmgs(self, cmd: Command) -> Reply | list[str]:
        return self._prompt(cmd, "send")

    def _cmgw(self, cmd: Command) -> Reply | list[str]:
        return self._prompt(cmd, "write")

    def body(self, prompt: Prompt, hex_text: str) -> list[str]:
        """The PDU after "> ": check it, then send (+CMGS: mr) or store (+CMGW: i)."""
        if not gsm7.is_hex(hex_text):
            raise CmsError(CMS_INVALID_PDU)
        try:
            if pdu.tpdu_length(hex_text) != prompt.length:
                raise CmsError(CMS_INVALID_PDU)
            submit = pdu.parse_submit(hex_text)
        except pdu.PduError:
            raise CmsError(CMS_INVALID_PDU) from None
        self._require_sim()
        if prompt.kind == "write":
            idx = self.stores[self.cpms[1]].add(prompt.stat, hex_text.upper())
            if idx is None:
                raise CmsError(CMS_MEMORY_FULL)
            return [f"+CMGW: {idx}"]
        if not self.modem.network.registered():
            raise CmsError(CMS_NO_NETWORK)
        mr = self.next_mr
        self.next_mr = (mr + 1) % 256
        submit.mr = mr
        self.sent.append(submit)
        if submit.status_report:
            sent_at = self.modem.network_time()

            def report() -> None:
                sr = pdu.build_status_report(mr, submit.number, sent_at,
                                             self.modem.network_time(), smsc=self.smsc)
                self._arrive(_Held("report", sr, False))

            self.modem.timers.call_later(REPORT_AFTER_S, report)
        return [f"+CMGS: {mr}"]

    def _cnma(self, cmd: Command) -> None:
        if not self._unacked:
            raise CmsError(CMS_NO_CNMA)
        item = self._unacked.pop(0)
        if item.timer is not None:
            item.timer.cancel()


def reassemble(sent: list[pdu.Submit]) -> list[tuple[str, str]]:
    """(number, text) of whole messages among sent SUBMITs; incomplete ones are left out."""
    out: list[tuple[str, str]] = []
    groups: dict[tuple[str, int, int], dict[int, str]] = {}
    for sub in sent:
        if sub.concat is None:
            out.append((sub.number, sub.text))
            continue
        key = (sub.number, sub.concat.ref, sub.concat.total)
        parts = groups.setdefault(key, {})
        parts[sub.concat.seq] = sub.text
        if len(parts) == sub.concat.total:
            out.append((sub.number, "".join(parts[i] for i in sorted(parts))))
    return out
