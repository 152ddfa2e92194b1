"""A simulated GSM/LTE modem on pty pairs (modem-simulator.md): three families, an audio
channel, SMS and USSD, and the faults real modems show. Pure stdlib, used by tests and by
`pbx dev`.
"""

from .audio import AudioStats
from .calls import Call
from .core import LogEntry
from .fake import FakeModem
from .pdu import Submit
from .profiles import PROFILES

__all__ = ["PROFILES", "AudioStats", "Call", "FakeModem", "LogEntry", "Submit"]
