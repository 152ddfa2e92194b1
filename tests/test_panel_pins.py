"""The front panel on gpiozero's MockFactory: every LED state as pin levels over fake time,
the button's short press and 10 s hold, the HAT modem's power pulses, and the pin factory
chosen by environment."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from appliance.frontpanel import FrontPanel, PanelInputs, PanelTimes
from appliance.panel import LineView, Phase
from hw.gpio import patterns
from hw.gpio.boards import BoardProfile, ModemPins, board
from hw.gpio.button import PushButton
from hw.gpio.leds import LampDriver
from hw.gpio.modempower import ModemPower, PulseTimes
from hw.gpio.pins import PinFactoryError, make_pin_factory
from tests.support.fakeclock import FakeClock

pytestmark = pytest.mark.timeout(30)


@dataclass
class Box:
    """What a box tells its panel, changed by the test."""

    phase: Phase = Phase.BOOTING
    lines: list[LineView] = field(default_factory=list)
    ringing: int = 0
    answered: int = 0
    resets: list[str] = field(default_factory=list)
    reset_done: asyncio.Event = field(default_factory=asyncio.Event)

    async def reset(self) -> None:
        """The factory reset the panel asks for."""
        self.resets.append("reset")
        self.reset_done.set()

    def inputs(self) -> PanelInputs:
        """The panel's view of this box."""
        return PanelInputs(phase=lambda: self.phase, lines=lambda: self.lines,
                           calls=lambda: (self.ringing, self.answered),
                           factory_reset=self.reset)


def levels(driver: LampDriver, clock: FakeClock, pin: object, times: list[float]) -> list[object]:
    """The pin's state at each of times (the driver ticked there)."""
    out = []
    for t in times:
        clock.now = t
        driver.tick()
        out.append(pin.state)  # type: ignore[attr-defined]
    return out


@pytest.fixture
def pwm_factory() -> Iterator[MockFactory]:
    """Mock pins that do PWM, like lgpio's on a Pi."""
    factory = MockFactory(pin_class=MockPWMPin)
    yield factory
    factory.reset()


@pytest.fixture
def plain_factory() -> Iterator[MockFactory]:
    """Mock pins without PWM."""
    factory = MockFactory()
    yield factory
    factory.reset()


async def test_every_led_pattern_on_the_pins(pwm_factory: MockFactory,
                                             plain_factory: MockFactory) -> None:
    clock = FakeClock()
    pins = {"status": 17, "call": 27, "line1": 22}
    driver = LampDriver(pins, pwm_factory, clock)
    plain = LampDriver({"line1": 22}, plain_factory, clock)
    try:
        assert all(lamp.pwm for lamp in driver.lamps.values())
        assert not plain.lamps["line1"].pwm
        status, call, line = (pwm_factory.pin(n) for n in (17, 27, 22))
        quarter = [i * 0.25 for i in range(9)]
        cases = [
            (patterns.OFF, [0.0] * 9),
            (patterns.ON, [1.0] * 9),
            (patterns.SLOW_BLINK, [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0]),
            (patterns.BLINK, [1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0]),
            (patterns.CONFIRM, [1.0, 0.0] * 4 + [1.0]),
        ]
        for pattern, expected in cases:
            driver.show({"status": pattern})
            assert levels(driver, clock, status, quarter) == expected, pattern
        driver.show({"call": patterns.FAST_BLINK})
        assert levels(driver, clock, call, [0.05, 0.15, 0.25, 0.35]) == [1.0, 0.0, 1.0, 0.0]
        # In a call: a PWM fade up and down over 2 s.
        driver.show({"line1": patterns.PULSE})
        line.clear_states()
        fade = levels(driver, clock, line, [i * 0.05 for i in range(41)])
        assert fade[0] < 0.1 and max(fade) > 0.95 and fade[39] < 0.1
        assert len({s.state for s in line.states}) > 10  # many brightness steps, not on/off
        # The same pattern on a pin without PWM: a heartbeat of two flashes a second.
        plain.show({"line1": patterns.PULSE})
        beat = levels(plain, clock, plain_factory.pin(22),
                      [0.05, 0.15, 0.3, 0.5, 0.9, 1.05, 1.15, 1.3])
        assert beat == [True, False, True, False, False, True, False, True]
        # Signal bars after a short press: two flashes, then a pause.
        driver.show({"line1": patterns.count(2)})
        bars = levels(driver, clock, line, [0.1, 0.3, 0.6, 0.8, 1.2, 2.0, 2.6])
        assert bars == [1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    finally:
        driver.close()
        plain.close()


async def test_led_loop_runs_on_the_clock(pwm_factory: MockFactory) -> None:
    clock = FakeClock()
    driver = LampDriver({"status": 17}, pwm_factory, clock)
    pin = pwm_factory.pin(17)
    task = asyncio.get_running_loop().create_task(driver.run())
    try:
        driver.show({"status": patterns.SLOW_BLINK})
        seen = []
        for _ in range(4):
            await clock.slept.wait()  # the loop has set the pin and sleeps to the next edge
            clock.slept.clear()
            seen.append(pin.state)
            clock.advance(1.0)
        assert seen == [1.0, 0.0, 1.0, 0.0]
        await clock.slept.wait()
        assert pin.state == 1.0
        driver.show({"status": patterns.OFF})
        # Woken by the change, not by time; steady, so nothing is left asleep.
        while pin.state != 0.0 or clock.sleepers():
            await asyncio.sleep(0)
        assert clock.now == 4.0
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        driver.close()
    assert pin.state == 0.0  # closed: dark


async def settle(front: FrontPanel) -> None:
    """Let the loop run the panel's scheduled update."""
    front.changed()
    while front._pending:
        await asyncio.sleep(0)


async def test_front_panel_shows_box_lines_and_calls(pwm_factory: MockFactory) -> None:
    box, clock = Box(), FakeClock()
    front = FrontPanel(board("pi-2usb"), pwm_factory, box.inputs(), clock)
    await front.start()
    try:
        assert front.leds is not None
        shown = front.leds.shown
        assert shown["status"] == patterns.SLOW_BLINK  # booting
        assert shown["line1"] == shown["line2"] == shown["call"] == patterns.OFF
        box.phase = Phase.READY
        box.lines = [LineView("mts", modem="registering"), LineView("tele2", modem="absent")]
        await settle(front)
        assert (shown["status"], shown["line1"], shown["line2"]) == (
            patterns.ON, patterns.BLINK, patterns.OFF)
        box.lines = [LineView("mts", modem="in_call"), LineView("tele2", modem="ready")]
        box.ringing, box.answered = 0, 1
        await settle(front)
        assert (shown["line1"], shown["line2"], shown["call"]) == (
            patterns.PULSE, patterns.ON, patterns.ON)
        box.ringing, box.answered = 1, 0
        await settle(front)
        assert shown["call"] == patterns.BLINK
        # A line that gave up is a fault of the box too.
        box.lines = [LineView("mts", modem="failed"), LineView("tele2", modem="ready")]
        await settle(front)
        assert shown["status"] == shown["line1"] == patterns.FAST_BLINK
        box.phase = Phase.FAULT
        box.lines = []
        await settle(front)
        assert shown["status"] == patterns.FAST_BLINK
        # The pins follow: status blinks fast (5 Hz) on the real pin.
        status = pwm_factory.pin(17)
        assert levels(front.leds, clock, status, [10.05, 10.15]) == [1.0, 0.0]
    finally:
        await front.stop()
    assert pwm_factory.pin(17).state == 0.0


async def test_refresh_picks_up_changes_without_events(pwm_factory: MockFactory) -> None:
    box, clock = Box(phase=Phase.READY), FakeClock()
    front = FrontPanel(board("pi-2usb"), pwm_factory, box.inputs(), clock,
                       PanelTimes(refresh_s=5.0))
    await front.start()
    try:
        assert front.leds is not None and front.leds.shown["status"] == patterns.ON
        box.phase = Phase.FAULT  # the engine stopped polling: no event says so
        await clock.asleep_until(5.0)
        clock.advance(5.0)
        while front.leds.shown["status"] != patterns.FAST_BLINK:
            await clock.slept.wait()
            clock.slept.clear()
        assert clock.now == 5.0
    finally:
        await front.stop()


async def press(pin: object, clock: FakeClock, seconds: float, hold_s: float = 10.0) -> None:
    """Hold the mock button down for seconds of fake time, then let go."""
    pin.drive_low()  # type: ignore[attr-defined]
    await clock.asleep_until(clock.now + hold_s)  # the hold timer started
    clock.advance(seconds)
    await asyncio.sleep(0)
    pin.drive_high()  # type: ignore[attr-defined]


async def test_button_short_press_and_bounce(plain_factory: MockFactory) -> None:
    clock = FakeClock()
    shorts: list[float] = []
    holds: list[float] = []
    pressed = asyncio.Event()

    def short() -> None:
        shorts.append(clock.now)
        pressed.set()

    button = PushButton(26, plain_factory, clock, on_short=short,
                        on_hold=lambda: holds.append(clock.now))
    pin = plain_factory.pin(26)
    try:
        assert pin.state is True  # pulled up: not pressed
        await press(pin, clock, 0.01)  # contact bounce
        await press(pin, clock, 0.5)
        await pressed.wait()
        assert shorts == [0.51] and holds == []
        await press(pin, clock, 9.9)  # just short of the hold: still a short press
        pressed.clear()
        await pressed.wait()
        assert len(shorts) == 2 and holds == []
    finally:
        await button.close()


async def test_hold_for_ten_seconds_confirms_then_resets(pwm_factory: MockFactory,
                                                         caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    box, clock = Box(phase=Phase.READY, lines=[LineView("mts", modem="ready", signal=22)]), \
        FakeClock()
    front = FrontPanel(board("pi-sim7600-hat"), pwm_factory, box.inputs(), clock,
                       PanelTimes(refresh_s=1000.0))
    await front.start()
    try:
        assert front.leds is not None and front.button is not None
        shown = front.leds.shown
        button = pwm_factory.pin(26)
        # A short press: one status line in the journal, signal bars on the line LED.
        with caplog.at_level(logging.WARNING, logger="appliance.frontpanel"):
            await press(button, clock, 0.3)
            while shown["line1"] != patterns.count(4):
                await clock.slept.wait()
                clock.slept.clear()
        assert "box ready; calls 0 answered, 0 ringing; line mts: ready, signal 4/4" \
            in caplog.text
        clock.advance(6.0)
        while shown["line1"] != patterns.ON:
            await asyncio.sleep(0)
        # Held: nothing at 9.9 s; at 10 s every LED confirms, then the reset runs.
        button.drive_low()
        await clock.asleep_until(clock.now + 10.0)
        clock.advance(9.9)
        await asyncio.sleep(0)
        assert box.resets == [] and shown["status"] == patterns.ON
        clock.advance(0.1)
        while shown["status"] != patterns.CONFIRM:
            await asyncio.sleep(0)
        assert set(shown.values()) == {patterns.CONFIRM}
        assert box.resets == []  # not before the confirmation has been seen
        button.drive_high()  # letting go now changes nothing
        clock.advance(2.0)
        await box.reset_done.wait()
        while front.resets != 1:
            await asyncio.sleep(0)
        assert box.resets == ["reset"] and shown["status"] == patterns.ON
    finally:
        await front.stop()


async def test_failed_reset_shows_a_fault(pwm_factory: MockFactory) -> None:
    box, clock = Box(phase=Phase.READY), FakeClock()

    async def broken() -> None:
        raise OSError("disk full")

    inputs = box.inputs()
    inputs.factory_reset = broken
    front = FrontPanel(board("pi-2usb"), pwm_factory, inputs, clock,
                       PanelTimes(confirm_s=0.0, refresh_s=1000.0))
    await front.start()
    try:
        front.hold()
        while not front.reset_failed:
            await asyncio.sleep(0)
        assert front.leds is not None
        assert front.leds.shown["status"] == patterns.FAST_BLINK
    finally:
        await front.stop()


async def test_modem_power_pulses(plain_factory: MockFactory) -> None:
    clock = FakeClock()
    hat = BoardProfile("hat", "", modems=(ModemPins(pwrkey=6, reset=5, usb_path="usb-a"),))
    fallbacks: list[str] = []

    async def sysfs(port: object) -> bool:
        fallbacks.append(str(getattr(port, "usb_path", "")))
        return True

    @dataclass
    class Port:
        usb_path: str

    power = ModemPower(hat, plain_factory, clock, fallback=sysfs, times=PulseTimes())
    reset_pin, key_pin = plain_factory.pin(5), plain_factory.pin(6)
    try:
        assert reset_pin.state is False and key_pin.state is False  # keys not pressed
        task = asyncio.ensure_future(power.recover(Port("usb-a")))
        await clock.slept.wait()
        assert reset_pin.state is True  # RESET held...
        clock.advance(0.5)
        assert await task is True
        assert [s.state for s in reset_pin.states] == [False, True, False]
        assert key_pin.states[-1].state is False and fallbacks == []
        # A modem the board has no pins for: the USB reset.
        assert await power.recover(Port("usb-b")) is True and fallbacks == ["usb-b"]
    finally:
        power.close()


async def test_power_key_cycle_when_no_reset_pin(plain_factory: MockFactory) -> None:
    clock = FakeClock()
    power = ModemPower(board("pi-sim7600-hat"), plain_factory, clock)
    key = plain_factory.pin(6)
    try:
        task = asyncio.ensure_future(power.recover(object()))
        timeline = []
        while not task.done():
            clock.slept.clear()
            await asyncio.wait({task, asyncio.ensure_future(clock.slept.wait())},
                               return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                break
            timeline.append((clock.now, key.state))
            clock.advance(min(due for due, _ in clock._waiting) - clock.now)
        assert await task is True
        # Pressed 3 s (off), released 5 s (the module shuts down), pressed 0.5 s (on).
        assert timeline == [(0.0, True), (3.0, False), (8.0, True)]
        assert key.state is False and power.pulses == 2
    finally:
        power.close()
    # No pins and no fallback: nothing can be done.
    none = ModemPower(board("pi-2usb"), plain_factory, clock)
    assert await none.recover(object()) is False


def test_pin_factory_from_the_environment() -> None:
    mock = make_pin_factory({"GPIOZERO_PIN_FACTORY": "mock"})
    try:
        assert isinstance(mock, MockFactory)
        assert mock is not make_pin_factory({"GPIOZERO_PIN_FACTORY": "MOCK"})
    finally:
        mock.close()
    with pytest.raises(PinFactoryError, match="is no gpiozero pin factory"):
        make_pin_factory({"GPIOZERO_PIN_FACTORY": "nonesuch"})


async def test_a_board_without_gpio_or_pins_is_a_quiet_panel() -> None:
    front = FrontPanel(board("none"), None, Box().inputs(), FakeClock())
    await front.start()
    assert front.leds is None and front.button is None and front.modems is None

    async def usb(port: object) -> bool:
        return True

    assert front.modem_reset(usb) is usb
    await front.stop()
