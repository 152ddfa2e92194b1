"""In-band DTMF detection on 8 kHz s16le frames (pjsua2 detects none; some modems neither).

Per 20 ms frame: the Goertzel power of the eight DTMF tones, then the checks a key press
must pass (ITU-T Q.24 and what line-side detectors do): each tone loud enough, the two
groups within the allowed twist, one clear winner per group, and the two tones carrying
most of the frame's energy (speech and music spread theirs over many frequencies).
Windows of one frame's length are analysed every half frame (the frame itself, and the
second half of the previous one joined to the first half of this one): a 40 ms tone, the
shortest Q.24 says must count, then always fills two whole windows however it falls across
frames, and a 40 ms pause two silent ones.
Debounce: a digit is reported once when `on_windows` windows in a row hold it, and the key
counts as released after `off_windows` windows without it, so a held key gives one digit
and two presses separated by a pause give two.
Pure: frames in, digits out; no I/O, no clock.
"""

from __future__ import annotations

import array
import enum
import math
import operator
import sys
from dataclasses import dataclass

ROWS = (697.0, 770.0, 852.0, 941.0)
COLS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYS = ("123A", "456B", "789C", "*0#D")
DIGITS = frozenset("0123456789*#ABCD")


@dataclass(frozen=True)
class DtmfParams:
    """Thresholds of the detector (the defaults suit GSM audio)."""

    rate: int = 8000
    min_tone_dbfs: float = -36.0  # each tone's level (a full-scale sine is 0 dBFS)
    max_twist_db: float = 8.0  # either group this much weaker than the other at most
    min_group_ratio: float = 4.0  # a group's winner over its runner-up (power ratio)
    min_tone_share: float = 0.7  # of the frame's energy in the two tones
    on_windows: int = 2  # whole windows in a 40 ms tone, Q.24's shortest valid one
    off_windows: int = 3  # a 40 ms pause (a lost 20 ms frame is not a release)


class KeyState(enum.Enum):
    """Where the debounce is."""

    RELEASED = "released"
    PRESSING = "pressing"  # a digit seen, not yet for frames_on frames
    PRESSED = "pressed"  # reported; waiting for the release


def _samples(frame: bytes | bytearray | memoryview) -> array.array[int]:
    samples = array.array("h")
    samples.frombytes(bytes(frame[:len(frame) - len(frame) % 2]))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


class DtmfDetector:
    """Feed frames in order; `feed` returns a digit once per key press."""

    def __init__(self, params: DtmfParams | None = None) -> None:
        self.params = p = params or DtmfParams()
        self._coeffs = [2 * math.cos(2 * math.pi * f / p.rate) for f in ROWS + COLS]
        self.state = KeyState.RELEASED
        self._digit: str | None = None
        self._count = 0
        self._half = b""  # the second half of the last frame
        self.frames = 0
        self.digits = 0

    def reset(self) -> None:
        """Forget any key in progress and the last frame (a new call)."""
        self._release()
        self._half = b""

    def _release(self) -> None:
        self.state = KeyState.RELEASED
        self._digit = None
        self._count = 0

    def classify(self, frame: bytes | bytearray | memoryview) -> str | None:
        """The DTMF digit this one frame holds, if it passes every check."""
        x = _samples(frame)
        n = len(x)
        if n < 64:
            return None  # too short to tell 697 Hz from 770 Hz
        energy = float(sum(map(operator.mul, x, x)))
        p = self.params
        # A tone of amplitude A (full scale 32768) has Goertzel power (A*n/2)^2.
        floor = (32768 * 10 ** (p.min_tone_dbfs / 20) * n / 2) ** 2
        if energy < 2 * floor / n:
            return None  # quieter than one tone at the minimum level: skip the filters
        powers = []
        for c in self._coeffs:
            s1 = s2 = 0.0
            for v in x:
                s0 = v + c * s1 - s2
                s2 = s1
                s1 = s0
            powers.append(s1 * s1 + s2 * s2 - c * s1 * s2)
        rows, cols = powers[:4], powers[4:]
        r = max(range(4), key=rows.__getitem__)
        c = max(range(4), key=cols.__getitem__)
        row, col = rows[r], cols[c]
        if row < floor or col < floor:
            return None
        twist = 10 ** (p.max_twist_db / 10)
        if row > col * twist or col > row * twist:
            return None
        if any(v * p.min_group_ratio > row for i, v in enumerate(rows) if i != r):
            return None
        if any(v * p.min_group_ratio > col for i, v in enumerate(cols) if i != c):
            return None
        # A tone's energy in the frame is (2*sqrt(P)/n)^2 * n/2 = 2P/n.
        if 2 * (row + col) / n < p.min_tone_share * energy:
            return None
        return KEYS[r][c]

    def feed(self, frame: bytes | bytearray | memoryview) -> str | None:
        """Analyse one frame (two windows) and debounce; a digit at the start of a press."""
        self.frames += 1
        data = bytes(frame)
        half = len(data) // 2
        found = None
        if self._half and len(self._half) == len(data) - half:
            found = self._window(self._half + data[:half])
        digit = self._window(data)
        self._half = data[half:]
        return found or digit

    def _window(self, window: bytes) -> str | None:
        digit = self.classify(window)
        p = self.params
        if self.state is KeyState.PRESSED:
            if digit == self._digit:
                self._count = 0
                return None
            self._count += 1  # windows without the held digit
            if self._count >= p.off_windows:
                self._release()
            return None
        if digit is None:
            self._release()
            return None
        if self.state is KeyState.PRESSING and digit == self._digit:
            self._count += 1
        else:
            self.state, self._digit, self._count = KeyState.PRESSING, digit, 1
        if self._count >= p.on_windows:
            self.state, self._count = KeyState.PRESSED, 0
            self.digits += 1
            return digit
        return None
