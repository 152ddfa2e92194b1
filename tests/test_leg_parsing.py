"""What the engine reads from an inbound INVITE's text (pure, fuzzed): user part, headers."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from appliance import features
from appliance.engine.legs import headers_of, request_user_of

INVITE = (
    "INVITE sip:102@127.0.0.1:5080 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\n"
    "x-pbx-device: 101\r\n"
    "Referred-By: <sip:102@127.0.0.1>\r\n"
    "X-PBX-Device: second\r\n"
    "Content-Length: 4\r\n\r\n"
    "X-PBX-Hairpin: in the body\r\n"
)


def test_request_user_and_kept_headers() -> None:
    assert request_user_of(INVITE) == "102"
    # Names are case-insensitive, the first value wins, the body is never read.
    assert headers_of(INVITE) == {"x-pbx-device": "101", "referred-by": "<sip:102@127.0.0.1>"}


def test_feature_code_in_the_request_uri() -> None:
    text = INVITE.replace("sip:102@", "sip:**103@")
    assert request_user_of(text) == "**103"
    assert features.parse(request_user_of(text)) == features.FeatureCall(
        features.Feature.DIRECTED_PICKUP, "103")


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=600))
def test_garbage_never_raises(text: str) -> None:
    assert isinstance(request_user_of(text), str)
    found = headers_of(text)
    assert set(found) <= {"x-pbx-device", "x-pbx-hairpin", "referred-by"}
    features.parse(text)
