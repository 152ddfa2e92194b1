"""Final results and URC/informational line parsers, and the line router. Nothing may raise."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hw.modem.calls import (
    CallAlerting,
    CallConnected,
    CallEnded,
    CallerId,
    CallInfo,
    CallOriginated,
    CallResult,
    CallState,
    Dtmf,
    MissedCall,
    PcmRegistration,
    Ring,
)
from hw.modem.commands import Response, expected_prefixes, is_call_command
from hw.modem.messages import (
    MessagePushed,
    MessageSent,
    MessageStored,
    StorageFull,
    StoredMessage,
    UssdReply,
)
from hw.modem.network import (
    Boot,
    Indication,
    OperatorInfo,
    OwnNumber,
    Registration,
    SignalQuality,
    SimStatus,
)
from hw.modem.results import FinalKind, FinalResult, parse_final
from hw.modem.urcs import PARSERS, LineRouter, ResponseLine, UnknownLine, parse_line

EXAMPLES = int(os.environ.get("PBX_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=1000, database=None,
                suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize(("line", "kind", "code"), [
    ("OK", FinalKind.OK, None),
    ("ERROR", FinalKind.ERROR, None),
    ("+CME ERROR: 10", FinalKind.CME_ERROR, 10),
    ("+CME ERROR: SIM not inserted", FinalKind.CME_ERROR, None),
    ("+CMS ERROR: 321", FinalKind.CMS_ERROR, 321),
    ("+CMS ERROR:500", FinalKind.CMS_ERROR, 500),
    ("COMMAND NOT SUPPORT", FinalKind.NOT_SUPPORTED, None),
    ("TOO MANY PARAMETERS", FinalKind.ERROR, None),
    ("NO CARRIER", FinalKind.NO_CARRIER, None),
    ("BUSY", FinalKind.BUSY, None),
    ("NO ANSWER", FinalKind.NO_ANSWER, None),
    ("NO DIALTONE", FinalKind.NO_DIALTONE, None),
])
def test_final_results(line: str, kind: FinalKind, code: int | None):
    final = parse_final(line)
    assert final is not None and final.kind is kind and final.code == code
    assert final.ok == (kind is FinalKind.OK)
    assert final.reason


@pytest.mark.parametrize("line", ["+CSQ: 1,2", "OKAY", "RING", "", "+CME ERRORS", "> "])
def test_not_final(line: str):
    assert parse_final(line) is None


def test_error_reasons_name_the_code():
    assert "SIM PIN required" in FinalResult(FinalKind.CME_ERROR, 11, "+CME ERROR: 11").reason
    assert "memory full" in FinalResult(FinalKind.CMS_ERROR, 322, "+CMS ERROR: 322").reason


CASES = [
    ("RING", Ring("")),
    ("+CRING: VOICE", Ring("VOICE")),
    ('+CLIP: "+79001234567",145,,,,0', CallerId("+79001234567", 145, 0, None)),
    ('+CLIP: "",128', CallerId("", 128, None, None)),
    ('+CLIP: "",128,,,,1', CallerId("", 128, 1, None)),
    ('+CLIP: "79001234567",129,"",,"Ivan",0', CallerId("79001234567", 129, 0, "Ivan")),
    ('+CLCC: 1,1,4,0,0,"+79001234567",145',
     CallInfo(1, True, CallState.INCOMING, 0, False, "+79001234567", 145)),
    ("+CLCC: 2,0,0,0,1", CallInfo(2, False, CallState.ACTIVE, 0, True, "", None)),
    ('+CLCC: 1,1,6,0,0,"123",129', CallInfo(1, True, CallState.DISCONNECTED, 0, False, "123", 129)),
    ('+QIND: "ccinfo",1,0,3,0,0,"+79007654321",145',
     CallInfo(1, False, CallState.ALERTING, 0, False, "+79007654321", 145, "+QIND")),
    ('+QIND: "ccinfo",1,1,-1,0,0,"89001234567",129',
     CallInfo(1, True, CallState.RELEASED, 0, False, "89001234567", 129, "+QIND")),
    ('^DSCI: 1,1,4,0,"+79001234567",145',
     CallInfo(1, True, CallState.INCOMING, 0, False, "+79001234567", 145, "^DSCI")),
    ("^ORIG:1,0", CallOriginated(1, 0)),
    ("^CONF:1", CallAlerting(1)),
    ("^CONN:1,0", CallConnected(1, 0, "^CONN")),
    ("^CEND:1,5,29,16", CallEnded(1, 5, 29, 16, "^CEND")),
    ("^CEND:1,0,104", CallEnded(1, 0, 104, None, "^CEND")),
    ("VOICE CALL: BEGIN", CallConnected(None, None, "VOICE CALL")),
    ("VOICE CALL: END: 000041", CallEnded(None, 41, None, None, "VOICE CALL")),
    ("VOICE CALL: END: 010203", CallEnded(None, 3723, None, None, "VOICE CALL")),
    ("MISSED_CALL: 10:20AM +79001234567", MissedCall("10:20AM", "+79001234567")),
    ("+QTONEDET: 56", Dtmf("8", None, "+QTONEDET")),
    ("+QTONEDET: 35", Dtmf("#", None, "+QTONEDET")),
    ("+RXDTMF: 5", Dtmf("5", None, "+RXDTMF")),
    ("^DTMF:1,9", Dtmf("9", 1, "^DTMF")),
    ("+CPCMREG: 1", PcmRegistration(True)),
    ("NO CARRIER", CallResult(FinalKind.NO_CARRIER)),
    ("BUSY", CallResult(FinalKind.BUSY)),
    ("+CREG: 1", Registration("+CREG", 1)),
    ("+CREG: 2", Registration("+CREG", 2)),
    ("+CREG: 0,1", Registration("+CREG", 1, 0)),
    ('+CREG: 1,"1A2B","0000C3D4"', Registration("+CREG", 1, None, "1A2B", "0000C3D4")),
    ('+CREG: 5,"1A2B","C3D4",2', Registration("+CREG", 5, None, "1A2B", "C3D4", 2)),
    ('+CREG: 2,1,"1A2B","C3D4",7', Registration("+CREG", 1, 2, "1A2B", "C3D4", 7)),
    ('+CEREG: 2,5,"00FF","01A2B3C",7', Registration("+CEREG", 5, 2, "00FF", "01A2B3C", 7)),
    ("+CEREG: 3", Registration("+CEREG", 3)),
    ("+CGREG: 0,1", Registration("+CGREG", 1, 0)),
    ("+CSQ: 20,99", SignalQuality(20, None, "+CSQ")),
    ("+CSQ: 99,99", SignalQuality(None, None, "+CSQ")),
    ("^RSSI: 17", SignalQuality(17, None, "^RSSI")),
    ('+QIND: "csq",25,99', SignalQuality(25, None, "+QIND")),
    ('+COPS: 0,0,"MegaFon",2', OperatorInfo(0, 0, "MegaFon", 2)),
    ('+COPS: 0,2,"25002",7', OperatorInfo(0, 2, "25002", 7)),
    ("+COPS: 0", OperatorInfo(0)),
    ("+CPIN: READY", SimStatus("READY")),
    ("+CPIN: SIM PIN", SimStatus("SIM PIN")),
    ("+CPIN: NOT INSERTED", SimStatus("NOT INSERTED")),
    ("^BOOT:20254398,0,0,0,75", Boot("^BOOT", "20254398,0,0,0,75")),
    ("RDY", Boot("RDY")),
    ("+QIND: SMS DONE", Indication("SMS DONE")),
    ('+QIND: "act","LTE"', Indication("act", ("LTE",))),
    ('+CNUM: "","+79000000001",145', OwnNumber("+79000000001", 145, None)),
    ('+CNUM: "Me","89000000001",129', OwnNumber("89000000001", 129, "Me")),
    ('+CMTI: "SM",3', MessageStored("SM", 3)),
    ('+CMTI: "SM",-1', MessageStored("SM", -1)),
    ('+CDSI: "SR",1', MessageStored("SR", 1, True)),
    ("+CMT: ,31", MessagePushed(31)),
    ('+CMT: "",31', MessagePushed(31)),
    ("+CDS: 25", MessagePushed(25, "", True)),
    ("+CMGR: 0,,31", StoredMessage(None, 0, 31)),
    ("+CMGL: 4,1,,24", StoredMessage(4, 1, 24)),
    ("+CMGS: 12", MessageSent(12)),
    ('^SMMEMFULL: "SM"', StorageFull("SM")),
    ('+CUSD: 0,"AA180C3602",15', UssdReply(0, "AA180C3602", 15)),
    ('+CUSD: 1,"Balance: 1,5 r, reply 1",15', UssdReply(1, "Balance: 1,5 r, reply 1", 15)),
    ("+CUSD: 4", UssdReply(4)),
    ("+CUSD: 2", UssdReply(2)),
    ('+CUSD: 0,"04110430043B0430043D0441",72', UssdReply(0, "04110430043B0430043D0441", 72)),
]


@pytest.mark.parametrize(("line", "expected"), CASES)
def test_parse_line(line: str, expected: object):
    assert parse_line(line) == expected


def test_every_parser_has_a_case():
    prefixes = {parse_line(line).__class__ for line, _ in CASES}
    assert UnknownLine not in prefixes
    covered = {line.split(":")[0].strip() for line, _ in CASES}
    missing = [p for p in PARSERS if p not in covered]
    assert missing == []


def test_properties():
    assert CallerId("", 128).withheld and not CallerId("+7900", 145, 0).withheld
    assert Registration("+CREG", 5).registered and Registration("+CREG", 5).roaming
    assert not Registration("+CREG", 2).registered
    assert SignalQuality(0).dbm == -113 and SignalQuality(31).dbm == -51
    assert SignalQuality(None).dbm is None
    assert SimStatus("SIM PUK").needs_puk and SimStatus("SIM PIN").needs_pin
    assert SimStatus("NOT INSERTED").absent and SimStatus("READY").ready
    assert CallInfo(1, True, CallState.RELEASED).ended
    assert UssdReply(1, "x", 15).session_open
    assert Indication("SMS DONE").sms_ready


@pytest.mark.parametrize("line", [
    "+CLIP:", "+CLCC: x,y,z", "+CLCC: 1,7,0", "+CLCC: 1,0,9,0,0", "^ORIG:", "^CEND:a",
    "+QTONEDET: 1114112", "+QTONEDET: -5", "+QTONEDET: 65x", "+RXDTMF: 55", "+CREG: x",
    "+CSQ:", "+COPS: (2,\"A\",\"A\",\"25001\",7),,(0-4),(0-2)", "+CMTI: \"SM\"", "+CMT: x",
    "+CMGS: x", "+CUSD: x", "VOICE CALL: MAYBE", "MISSED_CALL:", "+CPCMREG: 7", "+CPIN:",
    "+QIND:", "+CNUM: ,,", "^DTMF:1,Z", "+CMGR: x", "+CMGL: 1", "^CONF:", "^CONN:x",
    "^DSCI: 1,2,3", "^RSSI: x",
])
def test_malformed_lines_are_unknown(line: str):
    assert isinstance(parse_line(line), UnknownLine)


def test_unknown_lines_keep_their_prefix():
    assert parse_line("^HCSQ:\"LTE\",50,43,138,16") == UnknownLine('^HCSQ:"LTE",50,43,138,16',
                                                                    "^HCSQ")
    assert parse_line("860000000000001") == UnknownLine("860000000000001", "")


def test_expected_prefixes_and_call_commands():
    assert expected_prefixes("AT+CSQ") == {"+CSQ"}
    assert expected_prefixes("AT+CREG?") == {"+CREG"}
    assert expected_prefixes('AT+CMGR=3') == {"+CMGR"}
    assert expected_prefixes("AT^CVOICE?") == {"^CVOICE"}
    assert expected_prefixes("AT+QPCMV=0;+QPCMV=1,0;D123;") == {"+QPCMV"}
    assert expected_prefixes("ATD+79001234567;") == frozenset()
    assert is_call_command("ATD+79001234567;") and is_call_command("ATA")
    assert is_call_command("AT+QPCMV=0;+QPCMV=1,0;A")
    assert not is_call_command("AT+CHUP") and not is_call_command("ATH")


def route_all(lines: list[str], expected: frozenset[str] | None, call: bool = False) -> list:
    router = LineRouter()
    out: list = []
    for line in lines:
        out += router.route(line, expected, call=call)
    return out + router.flush()


def test_router_urc_inside_response():
    out = route_all(["+CSQ: 20,99", "^RSSI: 19", "^HCSQ:\"WCDMA\",30", "OK"],
                    frozenset({"+CSQ"}))
    assert out == [ResponseLine("+CSQ: 20,99"), SignalQuality(19, None, "^RSSI"),
                   UnknownLine('^HCSQ:"WCDMA",30', "^HCSQ"), FinalResult(FinalKind.OK, None, "OK")]


def test_router_dual_prefix_is_response_only_when_expected():
    assert route_all(["+CREG: 0,1"], frozenset({"+CREG"})) == [ResponseLine("+CREG: 0,1")]
    assert route_all(["+CREG: 1"], frozenset({"+CSQ"})) == [Registration("+CREG", 1)]
    assert route_all(["+CREG: 1"], None) == [Registration("+CREG", 1)]


def test_router_plain_lines_answer_the_command():
    assert route_all(["860000000000001", "OK"], frozenset())[0] == ResponseLine("860000000000001")


def test_router_no_carrier_is_final_only_for_calls():
    during_csq = route_all(["NO CARRIER", "OK"], frozenset({"+CSQ"}))
    assert during_csq == [CallResult(FinalKind.NO_CARRIER), FinalResult(FinalKind.OK, None, "OK")]
    dial = route_all(["BUSY"], frozenset(), call=True)
    assert dial == [FinalResult(FinalKind.BUSY, None, "BUSY")]
    assert route_all(["NO CARRIER"], None) == [CallResult(FinalKind.NO_CARRIER)]


def test_router_cmt_pdu_follows_even_mid_command():
    out = route_all(["+CMT: ,24", "0791aabb", "+CSQ: 5,0", "OK"], frozenset({"+CSQ"}))
    assert out[0] == MessagePushed(24, "0791aabb")
    assert out[1:] == [ResponseLine("+CSQ: 5,0"), FinalResult(FinalKind.OK, None, "OK")]


def test_router_cmt_without_pdu_does_not_eat_the_final():
    out = route_all(["+CMT: ,24", "OK"], frozenset())
    assert out == [MessagePushed(24), FinalResult(FinalKind.OK, None, "OK")]


def test_router_multiline_cusd():
    out = route_all(['+CUSD: 0,"Balance 10 r', "Tariff X", 'Bye",15'], None)
    assert out == [UssdReply(0, "Balance 10 r\nTariff X\nBye", 15)]


def test_router_unterminated_cusd_ended_by_final():
    out = route_all(['+CUSD: 0,"abc', "OK"], frozenset({"+CUSD"}))
    assert out[0] == UssdReply(0, "abc", None)
    assert out[1] == FinalResult(FinalKind.OK, None, "OK")


def test_stored_messages_pairs_headers_and_pdus():
    response = Response("AT+CMGL=4", ("+CMGL: 1,0,,24", "AABB", "+CMGL: 2,1,,25", "CCDD"),
                        FinalResult(FinalKind.OK))
    assert response.stored_messages() == [StoredMessage(1, 0, 24, "AABB"),
                                          StoredMessage(2, 1, 25, "CCDD")]
    single = Response("AT+CMGR=1", ("+CMGR: 0,,24", "AABB"), FinalResult(FinalKind.OK))
    assert single.stored_messages() == [StoredMessage(None, 0, 24, "AABB")]
    assert single.first(StoredMessage) == StoredMessage(None, 0, 24)
    imei = Response("AT+CGSN", ("860000000000001",), FinalResult(FinalKind.OK))
    assert imei.text() == "860000000000001" and imei.value() == "860000000000001"


URC_WORDS = [p + ":" for p in PARSERS] + ["RING", "RDY", "OK", "NO CARRIER", "+CME ERROR:"]
FIELD = st.one_of(st.text(max_size=12), st.integers(-300, 300).map(str),
                  st.sampled_from(['""', '"SM"', '"+7900"', ",", '"', "-1", "99"]))


@FUZZ
@given(st.sampled_from(URC_WORDS), st.lists(FIELD, max_size=9))
def test_parse_line_never_raises_on_prefixed_junk(word: str, fields: list[str]):
    result = parse_line(word + " " + ",".join(fields))
    assert result is not None


@FUZZ
@given(st.lists(st.one_of(st.text(max_size=40), st.sampled_from(
    ["OK", "+CMT: ,5", '+CUSD: 0,"x', "RING", "AABB", '"', "NO CARRIER", "+CSQ: 1,1"])),
    max_size=20), st.sampled_from([None, frozenset(), frozenset({"+CSQ"})]), st.booleans())
def test_router_never_raises_and_never_loses_finals(lines: list[str],
                                                    expected: frozenset[str] | None, call: bool):
    out = route_all(lines, expected, call)
    finals_in = [f for f in (parse_final(x) for x in lines) if f is not None]
    finals_out = [x for x in out if isinstance(x, FinalResult)]
    call_urcs = [x for x in out if isinstance(x, CallResult)]
    # A final result becomes the command's final or (call results) a CallResult, never nothing;
    # only one swallowed by an open +CUSD text... which a final result always ends.
    if expected is None:
        assert finals_out == []
    assert len(finals_out) + len(call_urcs) + sum(
        1 for x in out if isinstance(x, UnknownLine) and parse_final(x.text)) >= len(finals_in)
