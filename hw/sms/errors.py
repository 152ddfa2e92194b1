"""The one error type the SMS codec raises."""

from __future__ import annotations


class PduError(ValueError):
    """A PDU that cannot be decoded (or a message that cannot be encoded)."""
