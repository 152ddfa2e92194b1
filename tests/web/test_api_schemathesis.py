"""schemathesis against the live API and its own OpenAPI document: no 5xx, responses conform."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from appliance.accounts import create_api_token
from appliance.config.edit import LIST_SECTIONS, Actor
from tests.support.web import FakeEngine, make_admin

SEEDED: list[tuple[str, dict[str, Any]]] = [
    ("employees", {"extension": "101", "name": "Anna"}),
    ("departments", {"key": "sales", "name": "Sales", "members": ["101"]}),
    ("blacklist", {"number": "+79990001122", "reason": "spam"}),
    ("voicemail_boxes", {"key": "main", "name": "Main"}),
]
PHASES = "examples,coverage,fuzzing,stateful"
OUTPUT = Path("test-output/schemathesis.txt")
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_headers_conformance,response_schema_conformance")


@pytest.mark.timeout(120)
def test_schemathesis_finds_nothing(app: Flask, live_url: str, fake_engine: FakeEngine,
                                    tmp_path: Path) -> None:
    make_admin(app)
    app.config["PBX_API_RATE_LIMIT"] = (100000, 60.0)
    token = create_api_token(app.extensions["pbx"].db, "schemathesis", ["read", "write"])
    # Real items, named in the config file below, so reading, replacing and deleting one is
    # exercised too (random keys only ever reach the 404 path).
    editor, who = app.extensions["pbx"].editor, Actor("test")
    for section, item in SEEDED:
        editor.save(section, item, key=None, actor=who)
    config = tmp_path / "schemathesis.toml"
    config.write_text("".join(
        f'[[operations]]\ninclude-path = "/api/v1/config/{section}/{{key}}"\n'
        f'parameters = {{ key = "{item[key_field]}" }}\n\n'
        for section, item in SEEDED
        for key_field in [LIST_SECTIONS[section] or ""]))
    # The engine's live answers, so those operations are exercised, not only "engine down".
    fake_engine.route("GET", "/calls", [{"call_id": "c1", "caller": "101", "dialled": "+7916",
                                         "started_at": "2026-01-01T00:00:00+00:00",
                                         "answered": True}])
    fake_engine.route("GET", "/lines", [{"key": "sim1", "state": "ready"}])
    fake_engine.route("GET", "/registrations", [])
    st = Path(sys.executable).with_name("st")
    # One worker: with two, schemathesis 4.32's coverage phase sometimes fails inside itself
    # (a KeyError in hypothesis' strategy cache), which is no finding about this API. The
    # time budget bounds the run; all four phases share it.
    cmd = [str(st), "--config-file", str(config), "run", f"{live_url}/api/v1/openapi.json",
           "-H", f"Authorization: Bearer {token}", "--checks", CHECKS,
           "--max-examples", os.environ.get("PBX_SCHEMATHESIS_EXAMPLES", "8"),
           "--phases", os.environ.get("PBX_SCHEMATHESIS_PHASES", PHASES),
           "--workers", os.environ.get("PBX_SCHEMATHESIS_WORKERS", "1"), "--seed", "1",
           "--max-time", "40", "--request-timeout", "10",
           "--suppress-health-check", "all", "--no-color",
           "--report", "junit", "--report-dir", str(tmp_path / "report")]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=110,
                            cwd=tmp_path, env={**os.environ, "NO_COLOR": "1"})
    output = result.stdout + result.stderr
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(output)  # kept for reading: pytest's tmp dirs rotate away
    assert result.returncode == 0, output[-6000:]
    assert "No issues found" in output or " passed" in output, output[-3000:]
