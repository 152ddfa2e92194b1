"""Click-to-call end to end: the REST API asks the running box (`pbx run`, another process)
to ring desk phone 101; when 101 answers, the box dials the number out through the SIM line
outbound routing picks (a simulated modem), with ringback to 101 while the far end rings;
tones pass both ways; hanging up through the API ends both sides and the call record says
who called whom.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from appliance.accounts import create_api_token
from appliance.control import ControlError, call
from appliance.settings import Settings
from hw.modemsim import FakeModem
from tests.support.harness import EngineProcess
from tests.support.tones import dominant, tone_presence
from tests.test_sim_calls import OFFICE, RATE, far_end_hears, phone_heard, ready_phone

pytestmark = pytest.mark.timeout(180)

CUSTOMER = "+79161234567"


@pytest.fixture
def api(settings: Settings) -> Iterator[tuple[FlaskClient, dict[str, str]]]:
    """The web app on the box's database and control socket, with a read+write token."""
    from webui import create_app

    app = create_app(settings, TESTING=True)
    token = create_api_token(app.extensions["pbx"].db, "crm", ["read", "write"])
    try:
        yield app.test_client(), {"Authorization": f"Bearer {token}"}
    finally:
        app.extensions["pbx"].db.close()


def test_click_to_call_rings_the_employee_then_dials_out_on_the_sim(
        start_box: Callable[..., EngineProcess], settings: Settings, modem: FakeModem,
        tmp_path: Path, api: tuple[FlaskClient, dict[str, str]]) -> None:
    client, auth = api
    start_box(OFFICE)
    phone, rec = ready_phone(settings, tmp_path, "101", "Kx7-desk-alpha",
                             "--answer-code", "180", "--tone", "1000")
    try:
        modem.script_number(CUSTOMER, answer_after=2.0)
        modem.audio.tone(600, dbfs=-12)  # the customer speaks 600 Hz
        r = client.post("/api/v1/calls", headers=auth,
                        json={"extension": "101", "number": CUSTOMER})
        assert r.status_code == 201, r.json
        call_id = r.json["call_id"]
        ring = phone.wait(lambda e: e.get("event") == "incoming")
        # The phone shows whom it is about to call, in the box's language (Russian unless
        # set): "Звонок на +7916..." <sip:+7916...@...>
        assert CUSTOMER in ring["remote"] and f"Звонок на {CUSTOMER}" in ring["remote"], ring
        assert modem.calls() == []  # nothing goes out before the employee answers
        phone.send(cmd="answer", id=ring["id"])
        phone.wait(lambda e: e.get("id") == ring["id"] and e.get("state") == "CONFIRMED")
        deadline = time.monotonic() + 15
        while not modem.calls():
            assert time.monotonic() < deadline, "the SIM line never dialled"
            time.sleep(0.05)
        [out] = modem.calls()
        assert out.number == CUSTOMER and out.direction == 0  # ATD<number>: an outgoing call
        live = client.get("/api/v1/calls", headers=auth).json["items"]
        assert [c["call_id"] for c in live] == [call_id]
        # 101 -> engine -> SIM line: the customer hears the employee's 1000 Hz.
        assert tone_presence(far_end_hears(modem), RATE, 1000) >= 0.8
        time.sleep(1.0)  # audio needs wall-clock time to reach the phone's recording
        r = client.delete(f"/api/v1/calls/{call_id}", headers=auth)
        assert r.status_code == 204, r.json
        phone.wait(lambda e: e.get("id") == ring["id"] and e.get("state") == "DISCONNECTED")
        heard = phone_heard(phone, rec)
        # Ringback (425 Hz) while the customer's phone rang, then the customer's voice.
        # (pjmedia's tone generator is not a pure sine: it is the loudest of the three.)
        assert dominant(heard[int(0.2 * RATE):int(0.9 * RATE)], RATE, [425, 600, 1000])[0] == 425
        assert tone_presence(heard[-int(1.0 * RATE):], RATE, 600) >= 0.7
        deadline = time.monotonic() + 10
        while modem.calls() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert modem.calls() == []  # the box hung the modem up too
        assert client.delete(f"/api/v1/calls/{call_id}", headers=auth).status_code == 404
    finally:
        phone.close()
    row = sqlite3.connect(settings.db_path).execute(
        "SELECT c.uuid, direction, dialled, disposition, hangup_side, l.key, e.extension"
        " FROM call_records c LEFT JOIN lines l ON l.id = c.line_id"
        " LEFT JOIN employees e ON e.id = c.employee_id").fetchall()
    assert row == [(call_id, "outbound", CUSTOMER, "answered", "system", "sim1", "101")]


def test_click_to_call_refusals(start_box: Callable[..., EngineProcess],
                                settings: Settings) -> None:
    """Unknown extension 404, nobody registered 409, bad input 400; unknown call 404."""
    start_box(OFFICE)
    cases = [({"extension": "199", "number": CUSTOMER}, 404),
             ({"extension": "101", "number": CUSTOMER}, 409),  # 101 has no phone registered
             ({"extension": "1", "number": CUSTOMER}, 400),
             ({"extension": "101", "number": "sip:evil@x"}, 400),
             ([1, 2], 400)]
    for body, status in cases:
        with pytest.raises(ControlError) as err:
            call(settings.control_socket, "POST", "/originate", body)
        assert err.value.status == status, (body, err.value)
    with pytest.raises(ControlError) as err:
        call(settings.control_socket, "POST", "/calls/no-such-call/hangup")
    assert err.value.status == 404
