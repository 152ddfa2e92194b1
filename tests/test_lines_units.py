"""Pure parts of the lines: link names, IMEI/ICCID answers, call reports and outcomes,
line matching, backoff, API bodies, the udev rule. Parsers are fuzzed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.control import BadRequest
from appliance.lines.api import sms_body, ussd_body
from appliance.lines.base import LineCallState, Outcome, backoff_delay
from appliance.lines.discovery import (
    Discovery,
    LineWish,
    ModemPort,
    match_line,
    parse_imei,
    parse_link_name,
    scan,
)
from appliance.lines.sim import line_state, parse_iccid
from appliance.lines.simcall import Caller, Gone, Seen, merge, observe, outcome_for
from hw.modem import QUECTEL_EC25, parse_line
from hw.modem.results import FinalKind
from hw.modem.state import ModemState

ROOT = Path(__file__).resolve().parent.parent


def test_link_names() -> None:
    by_path = parse_link_name("pci-0000:00:14.0-usb-0:1.3:1.2-port0")
    assert by_path is not None
    assert by_path.device == "pci-0000:00:14.0-usb-0:1.3" and by_path.interface == 2
    sim = parse_link_name("860000000000001-if02")
    assert sim is not None and (sim.device, sim.interface) == ("860000000000001", 2)
    by_id = parse_link_name("usb-Quectel_EC25_0123-if01-port0")
    assert by_id is not None and by_id.interface == 1
    for bad in ("", ".860000000000001-if02.tmp", "ttyUSB0", "a/b-if02", "x" * 300):
        assert parse_link_name(bad) is None


@given(st.text(max_size=300))
def test_link_name_parser_never_raises(name: str) -> None:
    parsed = parse_link_name(name)
    if parsed is not None:
        assert 0 <= parsed.interface <= 99 and parsed.device and parsed.device in name


def test_imei_and_iccid_answers() -> None:
    assert parse_imei("860000000000001") == "860000000000001"
    assert parse_imei("+CGSN: 860000000000001") == "860000000000001"
    assert parse_imei("IMEI 1234") is None
    assert parse_iccid(("+QCCID: 8970199000000000001",), False) == "8970199000000000001"
    assert parse_iccid(('+ICCID: "89701990000000000017"',), False) == "89701990000000000017"
    # EF_ICCID through +CRSM is nibble-swapped, padded with F.
    assert parse_iccid(('+CRSM: 144,0,"98079109000000000010"',), True) == "89701990000000000001"
    assert parse_iccid(("+CRSM: 144,0,\"zz\"",), True) is None


@given(st.text(max_size=200), st.booleans())
def test_identity_parsers_never_raise(text: str, swapped: bool) -> None:
    imei = parse_imei(text)
    assert imei is None or (len(imei) == 15 and imei.isdigit())
    iccid = parse_iccid((text,), swapped)
    assert iccid is None or (iccid.isdigit() and 18 <= len(iccid) <= 22)


@pytest.mark.parametrize(("line", "expected"), [
    ("RING", Seen(LineCallState.RINGING, incoming=True)),
    ('+CLIP: "+79001234567",145,,,,0', Caller("+79001234567")),
    ('+CLIP: "",128', Caller(None)),
    ('+CLCC: 1,1,4,0,0,"+79001234567",145', Seen(LineCallState.RINGING, 1, True,
                                                  "+79001234567")),
    ('+QIND: "ccinfo",2,0,3,0,0,"+79005550001",145', Seen(LineCallState.ALERTING, 2, False,
                                                          "+79005550001")),
    ('+QIND: "ccinfo",2,0,-1,0,0,"+79005550001",145', Gone(2)),
    ("^ORIG:1,0", Seen(LineCallState.DIALING, 1, False)),
    ("^CONF:1", Seen(LineCallState.ALERTING, 1, False)),
    ("^CONN:1,0", Seen(LineCallState.ACTIVE, 1)),
    ("^CEND:1,0,104,17", Gone(1, None, 17)),
    ("VOICE CALL: BEGIN", Seen(LineCallState.ACTIVE)),
    ("VOICE CALL: END: 000012", Gone(None, None, None)),
    ("BUSY", Gone(None, FinalKind.BUSY)),
    ("NO ANSWER", Gone(None, FinalKind.NO_ANSWER)),
    ("NO CARRIER", Gone(None, FinalKind.NO_CARRIER)),
    ("MISSED_CALL: 10:20AM +79001234567", Gone(None, None, 19, missed=True)),
    ("+CSQ: 20,99", None),
])
def test_observe(line: str, expected: object) -> None:
    assert observe(parse_line(line)) == expected


@given(st.text(max_size=120))
def test_observe_any_line(line: str) -> None:
    obs = observe(parse_line(line))
    assert obs is None or isinstance(obs, Seen | Caller | Gone)


def test_outcomes() -> None:
    def out(gone: Gone, *, active: bool = False, outgoing: bool = True,
            local: bool = False) -> Outcome:
        return outcome_for(gone, was_active=active, outgoing=outgoing, local=local)

    assert out(Gone(None, FinalKind.BUSY)) is Outcome.BUSY
    assert out(Gone(1, None, 17)) is Outcome.BUSY
    assert out(Gone(None, FinalKind.NO_ANSWER)) is Outcome.NO_ANSWER
    assert out(Gone(1, None, 19)) is Outcome.NO_ANSWER
    assert out(Gone(None, FinalKind.NO_CARRIER)) is Outcome.UNREACHABLE
    assert out(Gone(1, None, 34)) is Outcome.NO_NETWORK
    assert out(Gone(None, FinalKind.NO_CARRIER), active=True) is Outcome.NORMAL
    assert out(Gone(), outgoing=False) is Outcome.CANCELLED
    assert out(Gone(), local=True) is Outcome.CANCELLED
    assert out(Gone(), local=True, active=True) is Outcome.NORMAL
    codes = {o: o.sip_code for o in Outcome}
    assert codes[Outcome.BUSY] == 486 and codes[Outcome.NO_ANSWER] == 480
    assert codes[Outcome.NO_NETWORK] == 503 and codes[Outcome.NORMAL] == 200
    # A cause-less report waits for the decisive one, and they merge.
    first = Gone(2)
    assert not first.decisive
    joined = merge(first, Gone(None, FinalKind.BUSY))
    assert joined == Gone(2, FinalKind.BUSY) and joined.decisive


def test_line_states_follow_the_modem() -> None:
    assert line_state(ModemState.REGISTERING, True).value == "down"
    assert line_state(ModemState.READY, True).value == "ready"
    assert line_state(ModemState.READY, False).value == "disabled"
    assert line_state(ModemState.RESETTING, True).value == "resetting"


def _port(imei: str, device: str = "/dev/serial/by-path/pci-usb-0:1.3") -> ModemPort:
    return ModemPort(device, "pci-usb-0:1.3:1.2-port0", "/dev/ttyUSB2", "/dev/ttyUSB1", imei,
                     QUECTEL_EC25, channel=None)  # type: ignore[arg-type]


def test_match_line() -> None:
    wishes = [LineWish("a", "860000000000001", None, False),
              LineWish("b", None, "pci-usb-0:1.3", False),
              LineWish("c", None, None, True), LineWish("d", None, None, True)]
    assert match_line(_port("860000000000001"), wishes, set()) == "a"
    assert match_line(_port("860000000000009"), wishes, set()) == "b"
    assert match_line(_port("860000000000009"), wishes, {"b"}) == "c"
    assert match_line(_port("860000000000009", "/x/other"), wishes, {"c"}) == "d"
    assert match_line(_port("860000000000001"), wishes, {"a", "b", "c", "d"}) is None
    # A line configured for another IMEI never takes this modem.
    assert match_line(_port("860000000000002"), wishes[:1], set()) is None


def test_backoff() -> None:
    assert [backoff_delay(n, 2.0, 60.0) for n in range(7)] == [2, 4, 8, 16, 32, 60, 60]
    assert backoff_delay(10**6) == 60.0 and backoff_delay(-1) == 0.0


def test_discovery_sees_new_changed_and_gone(tmp_path: Path) -> None:
    (tmp_path / "tty1").touch()
    (tmp_path / "tty2").touch()
    links = tmp_path / "by-path"
    links.mkdir()
    os.symlink(tmp_path / "tty1", links / "pci-usb-0:1.3:1.2-port0")
    os.symlink(tmp_path / "tty2", links / "pci-usb-0:1.3:1.1-port0")
    os.symlink(tmp_path / "missing", links / "pci-usb-0:1.4:1.2-port0")  # dangling: skipped
    found = scan([links])
    assert list(found) == [f"{links}/pci-usb-0:1.3"]
    dev = found[f"{links}/pci-usb-0:1.3"]
    assert sorted(dev.interfaces) == [1, 2]
    disc = Discovery([links])
    appeared, vanished = disc.poll()
    assert [d.device for d in appeared] == [dev.device] and vanished == []
    assert disc.poll() == ([], [])
    # Re-enumerated: the same name points at a new tty.
    (tmp_path / "tty3").touch()
    os.replace(links / "pci-usb-0:1.3:1.2-port0", tmp_path / "old")
    os.symlink(tmp_path / "tty3", links / "pci-usb-0:1.3:1.2-port0")
    appeared, vanished = disc.poll()
    assert vanished == [dev.device] and [d.device for d in appeared] == [dev.device]
    for name in os.listdir(links):
        os.unlink(links / name)
    assert disc.poll() == ([], [dev.device])


def test_api_bodies() -> None:
    assert sms_body({"line": "sim1", "to": "+7 (900) 123-45-67", "text": "Привет"}) == (
        "sim1", "+79001234567", "Привет")
    assert ussd_body({"code": "*100#"}) == "*100#"
    for bad in (None, [], {"line": "sim1"}, {"line": "sim1", "to": "abc", "text": "x"},
                {"line": "Sim 1", "to": "+79001234567", "text": "x"},
                {"line": "sim1", "to": "+79001234567", "text": ""},
                {"line": "sim1", "to": "+79001234567", "text": "x" * 2000},
                {"line": "sim1", "to": "+79001234567", "text": "x", "extra": 1}):
        with pytest.raises(BadRequest):
            sms_body(bad)
    for bad in ({"code": "*100#; AT+CFUN=0"}, {"code": 100}, {"code": '*1"#'}, {}):
        with pytest.raises(BadRequest):
            ussd_body(bad)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4), max_leaves=10)


@given(json_values)
def test_api_bodies_fuzzed(body: object) -> None:
    for check in (sms_body, ussd_body):
        try:
            check(body)
        except BadRequest as exc:
            assert exc.status == 400


@given(st.fixed_dictionaries({"line": st.from_regex(r"[a-z0-9]{1,10}", fullmatch=True),
                              "to": st.text(max_size=25), "text": st.text(max_size=50)}))
def test_sms_body_only_lets_numbers_through(body: dict[str, str]) -> None:
    try:
        _, to, _ = sms_body(body)
    except BadRequest:
        return
    assert to.lstrip("+").isdigit() and 3 <= len(to.lstrip("+")) <= 20


def test_udev_rule_keeps_modemmanager_off_every_known_vendor() -> None:
    rules = (ROOT / "deploy" / "udev" / "77-pbx-modems.rules").read_text()
    for vendor in ("12d1", "2c7c", "1e0e"):
        assert any(f'ATTRS{{idVendor}}=="{vendor}"' in line
                   and 'ENV{ID_MM_DEVICE_IGNORE}="1"' in line
                   for line in rules.splitlines()), vendor


ORDER = [LineCallState.DIALING, LineCallState.RINGING, LineCallState.ALERTING,
         LineCallState.ACTIVE, LineCallState.ENDED]
observations = st.one_of(
    st.builds(Seen, st.sampled_from(ORDER[:4]), st.none() | st.integers(1, 3),
              st.none() | st.booleans(), st.none() | st.just("+79001234567")),
    st.builds(Gone, st.none() | st.integers(1, 3),
              st.none() | st.sampled_from(list(FinalKind)), st.none() | st.integers(0, 127)))


@given(st.booleans(), st.lists(observations, max_size=12))
def test_call_state_never_goes_back_and_ended_is_final(outgoing: bool,
                                                       seen: list[Seen | Gone]) -> None:
    from appliance.lines.simcall import SimCall

    async def nothing(*_: object) -> None:
        return None

    start = LineCallState.DIALING if outgoing else LineCallState.RINGING
    call = SimCall("sim1", outgoing=outgoing, remote=None, state=start, audio_device=None,
                   answer=nothing, hangup=nothing, dtmf=nothing)
    states = [call.state]
    for obs in seen:
        if isinstance(obs, Seen):
            call.apply_seen(obs)
        else:
            call.finish(obs)
        states.append(call.state)
    ranks = [0 if s in (LineCallState.DIALING, LineCallState.RINGING) else ORDER.index(s)
             for s in states]
    assert ranks == sorted(ranks)
    if call.ended:
        assert call.outcome is not None and call.sip_code in (200, 408, 480, 486, 487, 500,
                                                              503, 603)
        if not outgoing and not call.was_active:
            assert call.outcome is Outcome.CANCELLED
