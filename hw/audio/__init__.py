"""GSM call audio on the box side: frame rings, the serial-audio pump, in-band DTMF.

No pjsua2 here: the engine's port leg only pops and pushes the rings (`FrameRing`), and the
pump (`SerialAudio`) moves them to and from the modem's audio tty on its own thread.
"""

from .drift import DriftControl, DriftPolicy, decide
from .dtmf import DtmfDetector, DtmfParams, KeyState
from .pump import AudioError, AudioState, AudioStateChange, PumpStats, SerialAudio
from .ring import FRAME_S, FrameRing, RingStats, frame_bytes

__all__ = [
    "FRAME_S",
    "AudioError",
    "AudioState",
    "AudioStateChange",
    "DriftControl",
    "DriftPolicy",
    "DtmfDetector",
    "DtmfParams",
    "FrameRing",
    "KeyState",
    "PumpStats",
    "RingStats",
    "SerialAudio",
    "decide",
    "frame_bytes",
]
