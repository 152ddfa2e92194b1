"""The one exception of the SIP layer: a message (or a piece of one) that cannot be accepted."""

from __future__ import annotations


class SipParseError(ValueError):
    """A malformed or unacceptable SIP message, with what a stateless element may answer.

    `reason` is short, ASCII and never echoes attacker bytes, so it can be used as the reason
    phrase of the response. `status` is the code to answer with (400, 505 or 513).
    `can_respond` says whether enough of the message was understood to answer at all: it is a
    request (not an ACK) with a usable top Via. `response_headers` then holds the raw
    (name, value) pairs to copy into that response (Via..., From, To, Call-ID, CSeq).
    """

    def __init__(
        self,
        reason: str,
        *,
        status: int = 400,
        can_respond: bool = False,
        is_request: bool | None = None,
        response_headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.can_respond = can_respond
        self.is_request = is_request
        self.response_headers = response_headers

    def __repr__(self) -> str:
        return (f"SipParseError({self.reason!r}, status={self.status}, "
                f"can_respond={self.can_respond})")
