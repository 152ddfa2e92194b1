"""The front panel at run time: gathers the box's state, shows it on the LEDs, hears the button.

The decisions are panel.py's; the pins are hw.gpio's. `FrontPanel` is given everything as
callables in a `PanelInputs` (so it runs without a box in tests) and a pin factory made
explicitly (never gpiozero's global one). It updates on line events and engine events (no
polling), plus a slow re-read every `refresh_s`: the engine's health has no event, and a
modem can leave without its line changing state (registering and absent are both "down").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hw.gpio.boards import BoardProfile, board
from hw.gpio.button import HOLD_S, PushButton
from hw.gpio.leds import Clock, LampDriver
from hw.gpio.modempower import ModemPower
from hw.gpio.pins import make_pin_factory

from . import panel
from .panel import LineView, PanelState, Phase

if TYPE_CHECKING:
    from .box import Box

log = logging.getLogger(__name__)

ModemReset = Callable[[Any], Awaitable[bool]]


class LoopClock:
    """The event loop's time."""

    def monotonic(self) -> float:
        """The loop's monotonic clock."""
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        """asyncio.sleep()."""
        await asyncio.sleep(seconds)


@dataclass
class PanelInputs:
    """Where the panel reads the box's state, and what the button's hold does."""

    phase: Callable[[], Phase] = lambda: Phase.READY
    lines: Callable[[], Sequence[LineView]] = tuple
    calls: Callable[[], tuple[int, int]] = lambda: (0, 0)  # (ringing, answered)
    factory_reset: Callable[[], Awaitable[object]] | None = None


@dataclass(frozen=True)
class PanelTimes:
    """How long things show (tests keep them: the fake clock makes them free)."""

    hold_s: float = HOLD_S
    show_status_s: float = 6.0
    confirm_s: float = 2.0
    refresh_s: float = 5.0


@dataclass
class FrontPanel:
    """The LEDs, the button and the HAT modem's power pins of one box."""

    board: BoardProfile
    pin_factory: Any
    inputs: PanelInputs = field(default_factory=PanelInputs)
    clock: Clock = field(default_factory=LoopClock)
    times: PanelTimes = field(default_factory=PanelTimes)

    def __post_init__(self) -> None:
        self.leds: LampDriver | None = None
        self.button: PushButton | None = None
        self.modems: ModemPower | None = None
        self.state = PanelState()
        self.reset_failed = False
        self.resets = 0
        self._flags: dict[str, bool] = {"showing_status": False, "confirming_reset": False,
                                        "resetting": False}
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending = False
        self._undo: list[Callable[[], None]] = []

    # -- life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Claim the pins and show the current state (booting until the box says ready)."""
        if self.pin_factory is None or not self.board.has_gpio:
            return
        try:
            pins = panel.led_pins(self.board)
            if pins:
                self.leds = LampDriver(pins, self.pin_factory, self.clock)
            if self.board.button is not None:
                self.button = PushButton(self.board.button, self.pin_factory, self.clock,
                                         on_short=self.short_press, on_hold=self.hold,
                                         hold_s=self.times.hold_s)
            if self.board.modems:
                self.modems = ModemPower(self.board, self.pin_factory, self.clock)
        except Exception:
            await self.stop()
            raise
        self.update()
        if self.leds is not None:
            self._spawn(self.leds.run(), "panel-leds")
        self._spawn(self._refresh(), "panel-refresh")

    async def stop(self) -> None:
        """Let go of everything: LEDs off, pins released."""
        for undo in self._undo:
            undo()
        self._undo.clear()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.button is not None:
            await self.button.close()
            self.button = None
        if self.leds is not None:
            self.leds.close()
            self.leds = None
        if self.modems is not None:
            self.modems.close()
            self.modems = None

    def on_undo(self, undo: Callable[[], None]) -> None:
        """Run undo (an unsubscribe) when the panel stops."""
        self._undo.append(undo)

    def modem_reset(self, fallback: ModemReset) -> ModemReset:
        """The lines' reset hook: GPIO pulses for HAT modems, fallback for the rest."""
        modems = self.modems
        if modems is None:
            return fallback
        modems.fallback = fallback
        return modems.recover

    def snapshot(self) -> dict[str, Any]:
        """The board and what each LED shows, for GET /status."""
        shown = self.leds.shown if self.leds is not None else {}
        return {"board": self.board.name,
                "leds": {name: p.kind.value + (f":{p.count}" if p.count else "")
                         for name, p in shown.items()}}

    # -- state -------------------------------------------------------------------------------

    def read_state(self) -> PanelState:
        """The box's state now, with the panel's own flags."""
        ringing, answered = self.inputs.calls()
        phase = self.inputs.phase()
        lines = tuple(self.inputs.lines())
        if phase is Phase.READY and (self.reset_failed
                                     or any(x.enabled and x.modem == "failed" for x in lines)):
            phase = Phase.FAULT
        return PanelState(phase=phase, lines=lines, calls_ringing=ringing,
                          calls_answered=answered, **self._flags)

    def update(self) -> None:
        """Re-read the state and show it."""
        self._pending = False
        try:
            self.state = self.read_state()
        except Exception:  # a half-built box: show what was last known
            log.exception("front panel: reading the box's state failed")
        if self.leds is not None:
            self.leds.show(panel.decide(self.state, self.board).patterns)

    def changed(self, _event: object = None) -> None:
        """Something changed: update once the current handlers have run (coalesced)."""
        if not self._pending:
            self._pending = True
            # Later on the loop, so the switchboard has handled the same engine event first.
            asyncio.get_running_loop().call_soon(self.update)

    async def _refresh(self) -> None:
        while True:
            await self.clock.sleep(self.times.refresh_s)
            self.update()

    # -- the button --------------------------------------------------------------------------

    def short_press(self) -> None:
        """Log one status line, and show each line's signal bars for a few seconds."""
        self.update()
        log.warning("front panel: %s", panel.status_line(self.state))
        self._spawn(self._flag_for("showing_status", self.times.show_status_s),
                    "panel-status")

    def hold(self) -> None:
        """The button was held: confirm on every LED, then reset the box."""
        if self._flags["resetting"] or self._flags["confirming_reset"]:
            return
        self._spawn(self._reset(), "panel-reset")

    async def _flag_for(self, name: str, seconds: float) -> None:
        self._flags[name] = True
        self.update()
        try:
            await self.clock.sleep(seconds)
        finally:
            self._flags[name] = False
            self.update()

    async def _reset(self) -> None:
        await self._flag_for("confirming_reset", self.times.confirm_s)
        if self.inputs.factory_reset is None:
            log.error("front panel: held for a factory reset, but this box cannot reset")
            return
        self._flags["resetting"] = True
        self.update()
        try:
            await self.inputs.factory_reset()
            self.reset_failed = False
            self.resets += 1
        except Exception:
            log.exception("front panel: the factory reset failed")
            self.reset_failed = True
        finally:
            self._flags["resetting"] = False
            self.update()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The LEDs freeze where they are; the box itself goes on.
            log.error("front panel: %s stopped: %r", task.get_name(), task.exception())


# -- the box's side ------------------------------------------------------------------------

def box_phase(box: Box) -> Phase:
    """Booting until ready; a fault when the engine stopped polling."""
    if box.state != "ready":
        return Phase.BOOTING
    return Phase.READY if box.healthy() else Phase.FAULT


def box_lines(box: Box) -> list[LineView]:
    """The SIM lines as the panel sees them."""
    if box.lines is None:
        return []
    return [LineView(key=line.key, enabled=line.settings.enabled,
                     modem=line.modem_state.value, signal=line.info.get("signal"))
            for line in box.lines.lines()]


def box_calls(box: Box) -> tuple[int, int]:
    """(calls ringing, calls answered) at the switchboard."""
    calls = box.switchboard.active_calls() if box.switchboard is not None else []
    answered = sum(1 for c in calls if c.answered_at is not None)
    return len(calls) - answered, answered


async def start_panel(box: Box, environ: Mapping[str, str] | None = None) -> FrontPanel:
    """The box's panel, started (booting); without pins when the board has none or they fail."""
    from . import factory_reset

    s = box.settings
    profile = board(s.board)
    factory = None
    if profile.has_gpio:
        try:
            factory = make_pin_factory(os.environ if environ is None else environ)
        except Exception as exc:  # a box that cannot blink still takes calls
            log.error("front panel: no GPIO for board %s: %s", profile.name, exc)

    async def reset() -> object:
        return await factory_reset.reset_box(
            box, keep_recordings=s.factory_reset_keep_recordings, actor="button")

    inputs = PanelInputs(phase=lambda: box_phase(box), lines=lambda: box_lines(box),
                         calls=lambda: box_calls(box), factory_reset=reset)
    front = FrontPanel(profile, factory, inputs)
    try:
        await front.start()
    except Exception:
        log.exception("front panel: board %s did not start; running without it", profile.name)
        front = FrontPanel(profile, None, inputs)
    return front


def watch_box(front: FrontPanel, box: Box) -> None:
    """Follow line and engine events from now on (call once the box is up)."""
    if box.lines is not None:
        front.on_undo(box.lines.subscribe(front.changed))
    if box.engine is not None:
        front.on_undo(box.engine.subscribe(front.changed))
    front.update()

