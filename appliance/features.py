"""Feature codes dialled from desk phones (pure): call pickup for now.

`*8` picks up a call ringing anyone in the caller's pickup groups (their
departments); `**` followed by an extension picks up a call ringing that
extension. These are the codes Asterisk-based boxes taught most offices.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

GROUP_PICKUP = "*8"
DIRECTED_PICKUP = "**"

_DIRECTED = re.compile(r"^\*\*(\d{2,6})$")


class Feature(enum.Enum):
    """What a feature code asks for."""

    GROUP_PICKUP = "group_pickup"
    DIRECTED_PICKUP = "directed_pickup"


@dataclass(frozen=True)
class FeatureCall:
    """A dialled feature code and its argument."""

    feature: Feature
    target: str = ""


def parse(dialled: str) -> FeatureCall | None:
    """The feature a dialled string asks for, or None for an ordinary number."""
    if dialled == GROUP_PICKUP:
        return FeatureCall(Feature.GROUP_PICKUP)
    match = _DIRECTED.match(dialled)
    if match:
        return FeatureCall(Feature.DIRECTED_PICKUP, match.group(1))
    return None
