"""Feature codes dialled from desk phones (pure).

`*8` picks up a call ringing anyone in the caller's pickup groups (their
departments); `**` followed by an extension picks up a call ringing that
extension. These are the codes Asterisk-based boxes taught most offices.
`*97` opens the caller's own mailbox, `*98` any mailbox (its number, then its PIN),
`*96` records the greeting of the caller's own mailbox.
`*31` switches the office to day mode, `*32` to night mode, `*30` back to the
schedules (administrators only).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

GROUP_PICKUP = "*8"
DIRECTED_PICKUP = "**"
MY_GREETING = "*96"
MY_VOICEMAIL = "*97"
ANY_VOICEMAIL = "*98"
DAY_NIGHT = {"*30": "auto", "*31": "day", "*32": "night"}

_DIRECTED = re.compile(r"^\*\*(\d{2,6})$")


class Feature(enum.Enum):
    """What a feature code asks for."""

    GROUP_PICKUP = "group_pickup"
    DIRECTED_PICKUP = "directed_pickup"
    MY_GREETING = "my_greeting"
    MY_VOICEMAIL = "my_voicemail"
    ANY_VOICEMAIL = "any_voicemail"
    DAY_NIGHT = "day_night"  # target: 'auto', 'day' or 'night'

    @property
    def is_pickup(self) -> bool:
        """Whether the code picks up a ringing call."""
        return self in (Feature.GROUP_PICKUP, Feature.DIRECTED_PICKUP)


@dataclass(frozen=True)
class FeatureCall:
    """A dialled feature code and its argument."""

    feature: Feature
    target: str = ""


def parse(dialled: str) -> FeatureCall | None:
    """The feature a dialled string asks for, or None for an ordinary number."""
    if dialled == GROUP_PICKUP:
        return FeatureCall(Feature.GROUP_PICKUP)
    if dialled == MY_GREETING:
        return FeatureCall(Feature.MY_GREETING)
    if dialled == MY_VOICEMAIL:
        return FeatureCall(Feature.MY_VOICEMAIL)
    if dialled == ANY_VOICEMAIL:
        return FeatureCall(Feature.ANY_VOICEMAIL)
    if dialled in DAY_NIGHT:
        return FeatureCall(Feature.DAY_NIGHT, DAY_NIGHT[dialled])
    match = _DIRECTED.match(dialled)
    if match:
        return FeatureCall(Feature.DIRECTED_PICKUP, match.group(1))
    return None
