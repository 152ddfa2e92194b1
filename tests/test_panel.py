"""The front panel's pure decisions (appliance/panel.py), the LED patterns' shapes
(hw/gpio/patterns.py, property-tested) and the board profiles."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.panel import (
    LineView,
    PanelState,
    Phase,
    decide,
    led_pins,
    line_pattern,
    signal_bars,
    status_line,
)
from hw.gpio import patterns
from hw.gpio.boards import BOARDS, BoardError, BoardProfile, ModemPins, board
from hw.gpio.patterns import Kind, Pattern

TWO = board("pi-2usb")


def test_status_led_booting_ready_fault() -> None:
    assert decide(PanelState(Phase.BOOTING), TWO).patterns["status"] == patterns.SLOW_BLINK
    assert decide(PanelState(Phase.READY), TWO).patterns["status"] == patterns.ON
    assert decide(PanelState(Phase.FAULT), TWO).patterns["status"] == patterns.FAST_BLINK
    # A factory reset in progress looks like booting: the box is coming up afresh.
    assert decide(PanelState(Phase.READY, resetting=True), TWO).patterns["status"] \
        == patterns.SLOW_BLINK


@pytest.mark.parametrize(("modem", "enabled", "expected"), [
    ("absent", True, patterns.OFF),
    ("initialising", True, patterns.BLINK),
    ("sim_locked", True, patterns.BLINK),
    ("registering", True, patterns.BLINK),
    ("resetting", True, patterns.BLINK),
    ("ready", True, patterns.ON),
    ("in_call", True, patterns.PULSE),
    ("failed", True, patterns.FAST_BLINK),
    ("ready", False, patterns.OFF),
])
def test_line_led_for_every_modem_state(modem: str, enabled: bool, expected: Pattern) -> None:
    assert line_pattern(LineView("sim1", enabled=enabled, modem=modem)) == expected
    assert line_pattern(None) == patterns.OFF


def test_line_leds_follow_the_lines_in_key_order() -> None:
    state = PanelState(Phase.READY, lines=(LineView("zeta", modem="in_call"),
                                           LineView("alpha", modem="ready")))
    shown = decide(state, TWO).patterns
    assert shown["line1"] == patterns.ON and shown["line2"] == patterns.PULSE
    # One line, two LEDs: the second has no line and stays dark.
    one = decide(PanelState(Phase.READY, lines=(LineView("a", modem="ready"),)), TWO).patterns
    assert one["line2"] == patterns.OFF
    # Three lines, one LED (the HAT board): the first line by key gets it.
    hat = decide(PanelState(Phase.READY, lines=(LineView("b", modem="ready"),
                                                LineView("a", modem="registering"),
                                                LineView("c"))), board("pi-sim7600-hat"))
    assert hat.patterns == {"status": patterns.ON, "call": patterns.OFF,
                            "line1": patterns.BLINK}


def test_call_led() -> None:
    assert decide(PanelState(Phase.READY), TWO).patterns["call"] == patterns.OFF
    assert decide(PanelState(Phase.READY, calls_ringing=1), TWO).patterns["call"] \
        == patterns.BLINK
    assert decide(PanelState(Phase.READY, calls_ringing=2, calls_answered=1), TWO) \
        .patterns["call"] == patterns.ON


def test_short_press_shows_signal_bars_and_the_reset_is_confirmed_everywhere() -> None:
    state = PanelState(Phase.READY, showing_status=True,
                       lines=(LineView("a", modem="ready", signal=25),
                              LineView("b", modem="registering", signal=99)))
    shown = decide(state, TWO).patterns
    assert shown["line1"] == patterns.count(4) and shown["line2"] == patterns.OFF
    confirm = decide(PanelState(Phase.READY, confirming_reset=True), TWO).patterns
    assert confirm == dict.fromkeys(("status", "call", "line1", "line2"), patterns.CONFIRM)


@pytest.mark.parametrize(("rssi", "bars"), [(None, 0), (99, 0), (-1, 0), (0, 1), (9, 1),
                                            (10, 2), (14, 2), (15, 3), (19, 3), (20, 4),
                                            (31, 4), (32, 0)])
def test_signal_bars(rssi: int | None, bars: int) -> None:
    assert signal_bars(rssi) == bars


def test_status_line_names_every_line() -> None:
    text = status_line(PanelState(Phase.READY, calls_answered=1, lines=(
        LineView("mts", modem="ready", signal=18), LineView("tele2", enabled=False))))
    assert text == ("box ready; calls 1 answered, 0 ringing; line mts: ready, signal 3/4; "
                    "line tele2: disabled, signal 0/4")


def test_boards() -> None:
    assert not BOARDS["none"].has_gpio and led_pins(BOARDS["none"]) == {}
    assert led_pins(TWO) == {"status": 17, "call": 27, "line1": 22, "line2": 23}
    hat = board("pi-sim7600-hat")
    assert hat.modem_pins("anything-usb-0:1.3:1.2-port0") == ModemPins(pwrkey=6)
    with pytest.raises(BoardError, match="known boards: none, pi-2usb, pi-sim7600-hat"):
        board("pi-9000")
    with pytest.raises(BoardError, match="used twice"):
        BoardProfile("bad", "", status_led=17, call_led=17).check()
    with pytest.raises(BoardError, match="not BCM"):
        BoardProfile("bad", "", line_leds=(40,)).check()
    only = BoardProfile("x", "", modems=(ModemPins(reset=5, usb_path="p1"),))
    assert only.modem_pins("p2") is None and only.modem_pins("p1") == ModemPins(reset=5,
                                                                               usb_path="p1")


def test_pattern_shapes() -> None:
    blink = [patterns.level(patterns.BLINK, t) for t in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert blink == [1.0, 1.0, 0.0, 0.0, 1.0]
    slow = [patterns.level(patterns.SLOW_BLINK, t) for t in (0.0, 0.9, 1.0, 1.9, 2.0)]
    assert slow == [1.0, 1.0, 0.0, 0.0, 1.0]
    fast = [patterns.level(patterns.FAST_BLINK, t) for t in (0.05, 0.15, 0.25)]
    assert fast == [1.0, 0.0, 1.0]
    # With PWM a pulse rises to full and falls back; without, two flashes a second.
    pulse = [patterns.level(patterns.PULSE, i * 0.05, pwm=True) for i in range(40)]
    assert pulse[0] < 0.1 and max(pulse) > 0.95 and pulse[-1] < 0.1
    assert pulse[:20] == sorted(pulse[:20]) and pulse[20:] == sorted(pulse[20:], reverse=True)
    beat = [patterns.level(patterns.PULSE, t) for t in (0.05, 0.15, 0.3, 0.5, 0.9)]
    assert beat == [1.0, 0.0, 1.0, 0.0, 0.0]
    three = [patterns.level(patterns.count(3), t) for t in (0.1, 0.3, 0.6, 0.8, 1.1, 1.3, 2.0)]
    assert three == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0]
    assert patterns.count(0) == patterns.OFF and patterns.count(12) == patterns.count(9)
    assert patterns.next_change(patterns.ON, 5.0) is None
    assert patterns.next_change(patterns.BLINK, 0.2) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="does not fit"):
        Pattern(Kind.BLINK, count=2)


PATTERNS = st.one_of(st.sampled_from([patterns.OFF, patterns.ON, patterns.SLOW_BLINK,
                                      patterns.BLINK, patterns.FAST_BLINK, patterns.PULSE,
                                      patterns.CONFIRM]),
                     st.integers(0, 9).map(patterns.count))


@given(p=PATTERNS, t=st.floats(-1e6, 1e6, allow_nan=False), pwm=st.booleans())
def test_patterns_are_bounded_and_always_move_on(p: Pattern, t: float, pwm: bool) -> None:
    value = patterns.level(p, t, pwm)
    assert 0.0 <= value <= 1.0
    nxt = patterns.next_change(p, t, pwm)
    if p.kind in (Kind.ON, Kind.OFF):
        assert nxt is None
    else:
        # Never the same instant (a busy loop), never further than one period away.
        assert nxt is not None and t < nxt <= t + sum(d for d, _ in patterns.segments(p, pwm))
        assert 0.0 <= patterns.level(p, nxt, pwm) <= 1.0
