"""hw.audio's frame ring and drift decisions: unit, property and two-thread tests."""

from __future__ import annotations

import itertools
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.audio import DriftControl, DriftPolicy, FrameRing, decide, frame_bytes

pytestmark = pytest.mark.timeout(60)


class FakeClock:
    """A clock the test moves."""

    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def frame(n: int, size: int = 320) -> bytes:
    """A frame that says which one it is."""
    return n.to_bytes(4, "little") * (size // 4)


def number(f: bytes | bytearray) -> int:
    return int.from_bytes(f[:4], "little")


def test_frame_size_follows_the_rate() -> None:
    assert frame_bytes(8000) == 320 and frame_bytes(16000) == 640


def test_fifo_order_silence_on_underrun_and_counters() -> None:
    ring = FrameRing(capacity=3)
    assert ring.pop() == bytes(320)  # empty and not active: silence, no underrun
    assert ring.underruns == 0
    ring.active = True
    assert ring.take() is None and ring.underruns == 1
    for n in range(3):
        ring.push(frame(n))
    assert [number(ring.pop()) for _ in range(3)] == [0, 1, 2]
    assert ring.pop() == ring.silence and ring.underruns == 2
    s = ring.stats()
    assert (s.pushed, s.popped, s.overruns, s.depth) == (3, 3, 0, 0)


def test_overrun_drops_the_oldest() -> None:
    ring = FrameRing(capacity=4)
    for n in range(10):
        ring.push(frame(n))
    assert len(ring) == 4 and ring.overruns == 6
    assert [number(ring.pop()) for _ in range(4)] == [6, 7, 8, 9]


def test_wait_time_of_popped_frames_on_a_fake_clock() -> None:
    clock = FakeClock()
    ring = FrameRing(capacity=10, clock=clock)
    assert ring.take_min_wait() is None
    ring.push(frame(1))
    clock.t += 0.030
    ring.push(frame(2))
    clock.t += 0.005
    ring.pop()  # waited 35 ms
    ring.pop()  # waited 5 ms
    assert ring.take_min_wait() == pytest.approx(0.005)
    assert ring.take_min_wait() is None  # reset by the read
    assert ring.last_pop == clock.t and ring.last_push == pytest.approx(clock.t - 0.005)


def test_trim_keep_newest_repeat_and_clear() -> None:
    ring = FrameRing(capacity=8)
    for n in range(5):
        ring.push(frame(n))
    assert ring.trim(2) == 2 and ring.trimmed == 2
    assert ring.keep_newest(1) == 2 and number(ring.pop()) == 4
    ring.push(frame(7))
    ring.repeat(frame(7))
    assert ring.repeated == 1 and ring.pushed == 6
    assert [number(ring.pop()) for _ in range(2)] == [7, 7]
    assert ring.trim(3) == 0
    ring.push(frame(8))
    ring.clear()
    assert len(ring) == 0


@pytest.mark.parametrize(("capacity", "size"), [(0, 320), (4, 0), (4, 321)])
def test_bad_shapes_are_refused(capacity: int, size: int) -> None:
    with pytest.raises(ValueError):
        FrameRing(capacity, size)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 12), st.lists(st.sampled_from(["push", "pop", "trim", "repeat"]),
                                    max_size=200))
def test_ring_matches_a_bounded_fifo_model(capacity: int, ops: list[str]) -> None:
    ring = FrameRing(capacity=capacity, frame_size=8)
    model: list[int] = []
    counter = itertools.count()
    for op in ops:
        if op == "push":
            n = next(counter)
            ring.push(frame(n, 8))
            model.append(n)
            del model[:max(0, len(model) - capacity)]
        elif op == "repeat":
            n = next(counter)
            ring.repeat(frame(n, 8))
            model.append(n)
            del model[:max(0, len(model) - capacity)]
        elif op == "pop":
            got = ring.take()
            assert (got is None) == (not model)
            if got is not None:
                assert number(got) == model.pop(0)
        else:
            ring.trim(1)
            del model[:1]
        assert len(ring) == len(model) <= capacity
    s = ring.stats()
    assert s.pushed + s.repeated - s.overruns - s.popped - s.trimmed == s.depth


def test_two_threads_never_lose_order() -> None:
    """A producer and a consumer at full speed: every frame popped is newer than the last."""
    ring = FrameRing(capacity=16, frame_size=8)
    total = 50_000
    seen: list[int] = []
    done = threading.Event()

    def produce() -> None:
        for n in range(total):
            ring.push(frame(n, 8))
        done.set()

    def consume() -> None:
        while not done.is_set() or len(ring):
            got = ring.take()
            if got is not None:
                seen.append(number(got))

    threads = [threading.Thread(target=produce), threading.Thread(target=consume)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert seen[-1] == total - 1
    assert ring.popped + ring.overruns + ring.trimmed == total


# --- drift decisions ----------------------------------------------------------------------

POLICY = DriftPolicy()


@pytest.mark.parametrize(("min_wait", "underruns", "want"), [
    (None, 0, 0),  # nobody popped
    (0.012, 0, 0),  # inside [low, high]
    (0.001, 0, 1),  # nearly late: one frame of cushion
    (0.012, 2, 1),  # underruns: cushion
    (0.031, 0, -1),  # one frame too many
    (0.200, 0, -9),  # a ring that filled while nobody listened: shed it in one go
    (float("nan"), 0, 0),
])
def test_decide(min_wait: float | None, underruns: int, want: int) -> None:
    assert decide(min_wait, underruns, POLICY) == want


def test_a_policy_that_would_hunt_is_refused() -> None:
    with pytest.raises(ValueError):
        DriftPolicy(low_s=0.005, high_s=0.020)
    with pytest.raises(ValueError):
        DriftPolicy(target_s=0.05)


def test_control_decides_once_per_window() -> None:
    clock = FakeClock()
    ring = FrameRing(capacity=20, clock=clock)
    control = DriftControl(DriftPolicy(window=5))
    decisions = []
    for _ in range(15):
        ring.push(frame(0))
        clock.t += 0.040
        ring.pop()  # every frame waits 40 ms (the test applies no decision)
        decisions.append(control.tick(ring))
    # A step, then one window to settle (frames queued before it still pop with their
    # old wait), then measured again.
    assert decisions == [0, 0, 0, 0, -1] + [0] * 5 + [0, 0, 0, 0, -1]
    assert control.last_min_wait == pytest.approx(0.040)
