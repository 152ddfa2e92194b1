"""The office of the source documents' scenarios, as a running box: `pbx run` in another
process, simulated SIM modems on ptys, pjsua2 desk phones in their own processes, prompts
that are tones (so a test can tell which one a caller heard), a mail server on loopback.

Each scenario test builds the configuration it needs from `office()`, starts the box and
reads back the call record's route explanation with `route_of()`.
"""

from __future__ import annotations

import json
import sqlite3
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.settings import Settings
from hw.modemsim import FakeModem
from tests.support.gsmcall import floats
from tests.support.harness import PhoneProcess, pbx
from tests.support.tones import read_wav, timeline, tone_presence, write_wav
from tests.test_edge_calls import desk_phone, registered

RATE = 8000
CUSTOMER = "+79161112233"
SIM_IMEI = "861234567890201"  # the `modem` fixture's, and sim1's in `office()`
SIM1_NUMBER = "+79000000001"
# The admin's prompts are tones, so that what a caller heard can be told apart.
PROMPT_TONES = {"welcome": 700, "closed": 1100, "menu-main": 900, "vm-greeting": 1300}
PASSWORDS = {"101": "Kx7-desk-alpha", "102": "Kx7-desk-bravo", "103": "Kx7-desk-charlie",
             "104": "Kx7-desk-delta", "105": "Kx7-desk-echo"}

EMPLOYEES = """
employees:
  - {extension: "101", name: Anna, mobiles: ["+79161230101"], ring_mobile_after: never,
     devices: [{username: "101", password: "Kx7-desk-alpha"}]}
  - {extension: "102", name: Boris, ring_mobile_after: never,
     devices: [{username: "102", password: "Kx7-desk-bravo"}]}
  - {extension: "103", name: Vera, ring_mobile_after: never,
     devices: [{username: "103", password: "Kx7-desk-charlie"}]}
  - {extension: "104", name: Gleb, ring_mobile_after: never,
     devices: [{username: "104", password: "Kx7-desk-delta"}]}
  - {extension: "105", name: Director, role: administrator, ring_mobile_after: never,
     devices: [{username: "105", password: "Kx7-desk-echo"}]}
"""


def office(body: str, *, imei: str = SIM_IMEI, smtp_port: int | None = None,
           extra_lines: str = "", employees: str = EMPLOYEES) -> str:
    """A configuration: box, prompts, the five employees, sim1 and `body` (flows...)."""
    smtp = ""
    if smtp_port is not None:
        smtp = (f"notifications: {{smtp: {{host: 127.0.0.1, port: {smtp_port}, "
                f"security: none, from_address: pbx@office.test}}}}\n")
    prompts = "".join(f"  - {{key: {key}, file: prompts/{key}.wav}}\n" for key in PROMPT_TONES)
    return (f"version: 1\nbox: {{country: RU, area_code: \"495\", time_zone: Europe/Moscow,"
            f" language: en}}\nprompts:\n{prompts}{employees}"
            f"lines:\n  - {{key: sim1, kind: sim, imei: \"{imei}\"}}\n{extra_lines}"
            f"{smtp}{body}")


def write_prompts(settings: Settings) -> None:
    """The admin's prompt files (tones) under the data directory."""
    folder = settings.data_dir / "prompts"
    folder.mkdir(parents=True, exist_ok=True)
    for key, freq in PROMPT_TONES.items():
        write_wav(folder / f"{key}.wav", freq, 1.0)


def lines_ready(settings: Settings, keys: tuple[str, ...] = ("sim1",),
                timeout: float = 30.0) -> None:
    """Wait until these SIM lines are ready (the engine is another process: poll it)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = json.loads(pbx(settings, "lines", "--json").stdout)
        states = {line.get("key"): line.get("state") for line in lines}
        if all(states.get(k) == "ready" for k in keys):
            return
        assert time.monotonic() < deadline, states
        time.sleep(0.3)


class Phones:
    """Registered desk phones by extension; closed together."""

    def __init__(self, settings: Settings, tmp_path: Path) -> None:
        self.settings = settings
        self.tmp_path = tmp_path
        self.by_ext: dict[str, PhoneProcess] = {}

    def add(self, ext: str, *extra: str) -> PhoneProcess:
        """A desk phone for ext that records what it hears (under tmp_path/rec-<ext>)."""
        rec = self.tmp_path / f"rec-{ext}"
        rec.mkdir(exist_ok=True)
        phone = desk_phone(self.settings, ext, PASSWORDS[ext], "--record-dir", str(rec),
                           *extra)
        self.by_ext[ext] = phone
        phone.wait(registered(phone))
        return phone

    def __getitem__(self, ext: str) -> PhoneProcess:
        return self.by_ext[ext]

    def close(self) -> None:
        """Quit every phone."""
        for phone in self.by_ext.values():
            phone.close()


def incoming(phone: PhoneProcess, after: int = 0, timeout: float = 20) -> dict[str, Any]:
    """The phone's next incoming call (the after-th one counts from 0)."""
    phone.wait_count(lambda e: e.get("event") == "incoming", after + 1, timeout=timeout)
    return [e for e in phone.seen if e.get("event") == "incoming"][after]


def state(call_id: int, name: str) -> Callable[[dict[str, Any]], bool]:
    """Event predicate: call_id reached state name."""
    return lambda e: e.get("id") == call_id and e.get("state") == name


def records(settings: Settings) -> list[dict[str, Any]]:
    """Every finished call record, oldest first, with its route JSON decoded."""
    conn = sqlite3.connect(settings.db_path)
    conn.row_factory = sqlite3.Row
    rows = [dict(r) for r in conn.execute(
        "SELECT * FROM call_records WHERE ended_at IS NOT NULL ORDER BY id")]
    for row in rows:
        row["route"] = json.loads(row["route"] or "{}")
    return rows


def wait_records(settings: Settings, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Wait until `count` call records are finished (the box writes them after the call)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = records(settings)
        if len(rows) >= count or time.monotonic() > deadline:
            assert len(rows) >= count, rows
            return rows
        time.sleep(0.1)


def steps_of(row: dict[str, Any]) -> list[str]:
    """The route explanation of a call record, one line per step, then the outcome."""
    return list(row["route"].get("steps", []))


def caller_heard(modem: FakeModem, seconds: float) -> list[float]:
    """What the simulated GSM caller has received so far (up to the last `seconds`)."""
    pcm = modem.audio.captured()
    want = int(seconds * RATE * 2)
    return floats(pcm[-want:])


def wait_heard(modem: FakeModem, freq: float, timeout: float = 10.0) -> None:
    """Wait until the GSM caller hears `freq` (a prompt) for half a second."""
    deadline = time.monotonic() + timeout
    while True:
        heard = caller_heard(modem, 0.5)
        if len(heard) >= RATE // 2 and tone_presence(heard, RATE, freq) >= 0.5:
            return
        if time.monotonic() >= deadline:
            labels = {float(f): str(f) for f in (600, 700, 900, 1000, 1100, 1300)}
            heard = timeline(caller_heard(modem, 10.0), RATE, labels)
            raise AssertionError(f"the caller never heard {freq} Hz; the last 10 s: {heard}")
        time.sleep(0.1)


def wav_samples(path: Path, timeout: float = 10.0) -> list[float]:
    """A WAV file's samples once its writer has closed it (another process: poll)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            samples, rate = read_wav(path)
            assert rate == RATE
            return samples
        except (ValueError, wave.Error, EOFError, FileNotFoundError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
