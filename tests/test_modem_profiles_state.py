"""Modem family profiles (data and command builders) and the pure modem state machine."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.modem.profiles import (
    HUAWEI_E1550,
    PROFILES,
    QUECTEL_EC25,
    SIMCOM_7600,
    DtmfDetection,
    Family,
    by_name,
    identify,
)
from hw.modem.state import (
    CallEnded,
    CallStarted,
    Failed,
    Hung,
    ModemState,
    PortFound,
    PortLost,
    RegistrationChanged,
    ResetStarted,
    Sim,
    SimChanged,
    StateChange,
    apply,
    next_state,
    takes_calls,
)
from hw.modem.ussd import UssdEncoding

S = ModemState


@pytest.mark.parametrize(("cgmi", "cgmm", "name", "known"), [
    ("Quectel", "EC25", "quectel-ec25", True),
    ("QUECTEL", "EG25", "quectel-ec25", True),
    ("Quectel", "BG96", "quectel-ec25", False),
    ("SIMCOM INCORPORATED", "SIMCOM_SIM7600G-H", "simcom-7600", True),
    ("SIMCOM INCORPORATED", "SIM7600E-H", "simcom-7600", True),
    ("huawei", "E1550", "huawei-e1550", True),
    ("Manufacturer: huawei", "+CGMM: E173", "huawei-e1550", True),
    ("huawei", "E3372", "huawei-e1550", False),
])
def test_identify(cgmi: str, cgmm: str, name: str, known: bool):
    found = identify(cgmi, cgmm)
    assert found is not None and found.profile.name == name and found.known_model == known


def test_identify_unknown_vendor():
    assert identify("u-blox", "SARA-U201") is None
    assert identify("", "") is None


def test_audio_arming_per_family():
    assert QUECTEL_EC25.answer_sequence() == ("AT+QPCMV=0", "AT+QPCMV=1,0", "ATA")
    assert QUECTEL_EC25.dial_sequence("+79001234567") == (
        "AT+QPCMV=0", "AT+QPCMV=1,0", "ATD+79001234567;")
    assert HUAWEI_E1550.answer_sequence() == ("ATA", "AT^DDSETEX=2")
    assert HUAWEI_E1550.dial_sequence("112") == ("ATD112;", "AT^DDSETEX=2")
    assert SIMCOM_7600.dial_sequence("112") == ("ATD112;",)
    assert SIMCOM_7600.on_connected == ("AT+CPCMREG=1",)
    assert SIMCOM_7600.on_ended == ("AT+CPCMREG=0",)
    with pytest.raises(ValueError):
        QUECTEL_EC25.dial_sequence("123;ATH")
    with pytest.raises(ValueError):
        QUECTEL_EC25.dial_sequence("")


def test_dtmf_per_family():
    assert QUECTEL_EC25.dtmf_command("5") == 'AT+VTS="5"'
    assert SIMCOM_7600.dtmf_command("#") == "AT+VTS=#"
    assert HUAWEI_E1550.dtmf_command("*", index=2) == "AT^DTMF=2,*"
    with pytest.raises(ValueError):
        HUAWEI_E1550.dtmf_command("A")
    with pytest.raises(ValueError):
        QUECTEL_EC25.dtmf_command("55")
    assert QUECTEL_EC25.dtmf_detection is DtmfDetection.URC
    assert QUECTEL_EC25.dtmf_urc == "+QTONEDET" and SIMCOM_7600.dtmf_urc == "+RXDTMF"
    assert HUAWEI_E1550.dtmf_detection is DtmfDetection.INBAND and HUAWEI_E1550.dtmf_urc is None


def test_hangup_and_ussd_per_family():
    assert QUECTEL_EC25.hangup_command(2) == "AT+QHUP=16,2"
    assert QUECTEL_EC25.hangup_command() == "AT+CHUP"
    assert HUAWEI_E1550.hangup_command(1) == "AT+CHUP"
    assert HUAWEI_E1550.ussd_encoding is UssdEncoding.PACKED_HEX
    assert HUAWEI_E1550.ussd_command("*100#") == 'AT+CUSD=1,"AA180C3602",15'
    assert SIMCOM_7600.ussd_command("*100#") == 'AT+CUSD=1,"*100#",15'


def test_init_lists():
    for profile in PROFILES:
        commands = [step.command for step in profile.init_commands()]
        assert commands[0] == "ATE0" and "AT+CMGF=0" in commands and "AT+CMEE=1" in commands
        assert profile.voice_check in commands
        assert all(c.startswith("AT") for c in commands)
        assert len(commands) == len(set(commands))
        assert by_name(profile.name) is profile
    assert {p.family for p in PROFILES} == set(Family)
    with pytest.raises(KeyError):
        by_name("nokia")


def walk(*events) -> tuple[ModemState, list[StateChange]]:
    state = S.ABSENT
    changes = []
    for event in events:
        state, change = apply(state, event)
        if change:
            changes.append(change)
    return state, changes


def test_happy_path_and_a_call():
    state, changes = walk(PortFound(), SimChanged(Sim.READY), RegistrationChanged(True),
                          CallStarted(), CallEnded())
    assert state is S.READY
    assert [(c.old, c.new) for c in changes] == [
        (S.ABSENT, S.INITIALISING), (S.INITIALISING, S.REGISTERING), (S.REGISTERING, S.READY),
        (S.READY, S.IN_CALL), (S.IN_CALL, S.READY)]
    assert isinstance(changes[-1].event, CallEnded)


def test_pin_then_ready():
    state, _ = walk(PortFound(), SimChanged(Sim.PIN))
    assert state is S.SIM_LOCKED
    assert next_state(state, RegistrationChanged(True)) is S.SIM_LOCKED
    assert next_state(state, SimChanged(Sim.READY)) is S.REGISTERING
    assert next_state(state, SimChanged(Sim.PUK)) is S.SIM_LOCKED
    assert next_state(state, Failed("PIN refused")) is S.FAILED


def test_no_sim_fails():
    assert walk(PortFound(), SimChanged(Sim.ABSENT))[0] is S.FAILED


def test_network_drop_and_return():
    state, _ = walk(PortFound(), SimChanged(Sim.READY), RegistrationChanged(True), CallStarted())
    state = next_state(state, RegistrationChanged(False))
    assert state is S.REGISTERING and not takes_calls(state)
    assert next_state(state, CallEnded()) is S.REGISTERING
    assert next_state(state, RegistrationChanged(True)) is S.READY


def test_hang_reset_and_recovery_on_a_new_port():
    state, changes = walk(PortFound(), SimChanged(Sim.READY), RegistrationChanged(True),
                          Hung("3 timeouts"), PortLost(), PortFound(), SimChanged(Sim.READY),
                          RegistrationChanged(True))
    assert state is S.READY
    news = [c.new for c in changes]
    assert news[3:] == [S.RESETTING, S.INITIALISING, S.REGISTERING, S.READY]


def test_unplug_and_giving_up():
    assert walk(PortFound(), SimChanged(Sim.READY), PortLost())[0] is S.ABSENT
    state, _ = walk(PortFound(), ResetStarted(), Failed("no port after 5 resets"))
    assert state is S.FAILED
    assert next_state(state, SimChanged(Sim.READY)) is S.FAILED
    assert next_state(state, ResetStarted()) is S.RESETTING
    assert next_state(state, PortFound()) is S.INITIALISING
    assert next_state(S.ABSENT, Failed()) is S.ABSENT


def test_no_change_means_no_event():
    assert apply(S.READY, RegistrationChanged(True)) == (S.READY, None)
    assert apply(S.ABSENT, CallStarted()) == (S.ABSENT, None)
    assert apply(S.RESETTING, PortLost()) == (S.RESETTING, None)


EVENTS = st.one_of(
    st.just(PortFound()), st.just(PortLost()), st.builds(SimChanged, st.sampled_from(list(Sim))),
    st.builds(RegistrationChanged, st.booleans()), st.just(CallStarted()), st.just(CallEnded()),
    st.just(Hung()), st.just(ResetStarted()), st.just(Failed()))


@settings(max_examples=300, database=None)
@given(st.lists(EVENTS, max_size=40))
def test_state_machine_invariants(events):
    state = S.ABSENT
    for event in events:
        new, change = apply(state, event)
        assert isinstance(new, ModemState)
        assert (change is None) == (new is state)
        if change:
            assert change.old is state and change.new is new and change.event is event
        # Only a registered, idle modem takes calls; only READY goes to IN_CALL.
        if new is S.IN_CALL:
            assert state in (S.READY, S.IN_CALL)
        if new is S.READY:
            assert state in (S.REGISTERING, S.IN_CALL, S.READY)
        if isinstance(event, PortLost):
            assert new in (S.ABSENT, S.RESETTING)
        state = new
