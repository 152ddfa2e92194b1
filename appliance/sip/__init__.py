"""The pure SIP layer of the edge: messages, URIs, digest auth, stream framing. No I/O.

* `parse_message(bytes) -> Request | Response` (raises only `SipParseError`), `to_bytes()`,
  `make_response`, `error_response` for the stateless 400/505/513 (message, headers, uri).
* `SipFramer` cuts TCP streams into messages (stream).
* `NonceManager`, `verify`, `challenges`, `ha1` for digest auth, MD5 and SHA-256 (digest).
* `torture_response` gives the stateless verdict for a parse result (verdicts; its docstring
  holds the table mapping the RFC 4475/5118 torture corpus to response codes).
* `parse_sdp` reads media addresses out of SDP bodies (sdp).
"""

from __future__ import annotations

from .digest import (
    AuthOutcome,
    AuthResult,
    NonceManager,
    NonceState,
    challenge,
    challenges,
    client_authorization,
    digest_response,
    ha1,
    select_credentials,
    verify,
)
from .errors import SipParseError
from .headers import (
    Credentials,
    CSeq,
    Header,
    NameAddr,
    Via,
    canonical_name,
    parse_credentials,
    parse_name_addr,
    parse_via,
)
from .message import (
    KNOWN_METHODS,
    MAX_HEADERS,
    MAX_MESSAGE_SIZE,
    REASONS,
    Message,
    Request,
    Response,
    error_response,
    make_response,
    parse_message,
    parse_request,
)
from .sdp import SessionDescription, parse_sdp
from .stream import Close, Frame, Ping, SipFramer
from .uri import OtherUri, SipUri, Uri, parse_uri, unescape
from .verdicts import is_unsafe_destination, torture_response, unsupported_options

__all__ = [
    "KNOWN_METHODS",
    "MAX_HEADERS",
    "MAX_MESSAGE_SIZE",
    "REASONS",
    "AuthOutcome",
    "AuthResult",
    "CSeq",
    "Close",
    "Credentials",
    "Frame",
    "Header",
    "Message",
    "NameAddr",
    "NonceManager",
    "NonceState",
    "OtherUri",
    "Ping",
    "Request",
    "Response",
    "SessionDescription",
    "SipFramer",
    "SipParseError",
    "SipUri",
    "Uri",
    "Via",
    "canonical_name",
    "challenge",
    "challenges",
    "client_authorization",
    "digest_response",
    "error_response",
    "ha1",
    "is_unsafe_destination",
    "make_response",
    "parse_credentials",
    "parse_message",
    "parse_name_addr",
    "parse_request",
    "parse_sdp",
    "parse_uri",
    "parse_via",
    "select_credentials",
    "torture_response",
    "unescape",
    "unsupported_options",
    "verify",
]
