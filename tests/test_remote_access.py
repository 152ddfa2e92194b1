"""Remote access (SSH): key parsing, the request file, and the root side on a temporary root.

The root side's commands go to a stand-in for systemctl that keeps the unit's state; the
image test (tests/image) runs the same code as root against the real SSH server.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance import remote_access as ra
from appliance.cli import main


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Real public keys from ssh-keygen, by type."""
    folder = tmp_path_factory.mktemp("keys")
    found = {}
    for kind, extra in (("ed25519", []), ("ecdsa", ["-b", "256"]), ("rsa", ["-b", "2048"])):
        path = folder / kind
        subprocess.run(["ssh-keygen", "-q", "-t", kind, *extra, "-N", "", "-C",
                        f"admin@{kind}", "-f", str(path)], check=True)
        found[kind] = (folder / f"{kind}.pub").read_text().strip()
    return found


class Systemctl:
    """A stand-in for systemctl: records commands, keeps one unit's enabled/active state."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.enabled = self.active = False
        self.fail = fail

    def __call__(self, argv: Sequence[str]) -> int:
        args = list(argv)
        self.calls.append(args)
        verb = next(a for a in args[1:] if not a.startswith("-"))
        if verb in ("enable", "disable"):
            if self.fail:
                return 1
            self.enabled = self.active = verb == "enable"
            return 0
        if verb == "is-enabled":
            return 0 if self.enabled else 1
        if verb == "is-active":
            return 0 if self.active else 3
        raise AssertionError(args)


def system(tmp_path: Path, ctl: Systemctl) -> ra.System:
    return ra.System(authorized_keys=tmp_path / "root" / ".ssh" / "authorized_keys", run=ctl)


NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def test_real_keys_are_accepted_and_normalised(keys: dict[str, str]) -> None:
    text = "\n".join(["# the office admin", "", keys["ed25519"], "  " + keys["rsa"] + "  ",
                      keys["ecdsa"], keys["ed25519"]])
    parsed = ra.parse_keys(text)
    assert parsed == (keys["ed25519"], keys["rsa"], keys["ecdsa"])  # duplicate dropped
    assert ra.parse_key(keys["ed25519"].rsplit(" ", 1)[0]) == keys["ed25519"].rsplit(" ", 1)[0]


@pytest.mark.parametrize(("mangle", "code"), [
    (lambda k: "ssh-dss AAAAB3NzaC1kc3MAAACBAP", "type"),
    (lambda k: 'command="/bin/sh" ' + k, "type"),  # authorized_keys options are refused
    (lambda k: k.split()[0], "format"),
    (lambda k: k.replace(k.split()[1], k.split()[1][:-8] + "!!!!!!!!"), "base64"),
    (lambda k: k.split()[0] + " " + k.split()[1][:40], "truncated"),
    (lambda k: "ssh-rsa " + k.split()[1], "mismatch"),  # an ed25519 key labelled RSA
    (lambda k: k.split()[0] + " AAAA", "truncated"),
    (lambda k: k + " \x07bell", "comment"),
])
def test_bad_keys_say_which_line_and_why(keys: dict[str, str], mangle: object,
                                         code: str) -> None:
    bad = mangle(keys["ed25519"])  # type: ignore[operator]
    with pytest.raises(ra.BadKey) as err:
        ra.parse_keys(keys["rsa"] + "\n" + bad)
    assert (err.value.line, err.value.code) == (2, code)


def test_at_most_32_keys(tmp_path: Path) -> None:
    lines = []
    for n in range(33):
        path = tmp_path / f"k{n}"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                       check=True)
        lines.append((tmp_path / f"k{n}.pub").read_text().strip())
    assert len(ra.parse_keys("\n".join(lines[:32]))) == 32
    with pytest.raises(ra.BadKey) as err:
        ra.parse_keys("\n".join(lines))
    assert err.value.code == "count"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_key_parser_never_fails_otherwise(text: str) -> None:
    try:
        for key in ra.parse_keys(text):
            assert "\n" not in key and key.split()[0] in ra.KEY_TYPES
    except ra.BadKey:
        pass


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode),
                 st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                              lambda c: st.lists(c, max_size=4)
                              | st.dictionaries(st.sampled_from(["enabled", "keys", "by"]), c,
                                                max_size=3)).map(
                     lambda v: json.dumps(v).encode())))
def test_request_reader_never_fails_otherwise(data: bytes) -> None:
    try:
        request = ra.request_from_json(data)
    except ra.RequestError:
        return
    assert isinstance(request.enabled, bool) and (request.keys or not request.enabled)


def test_on_then_off_on_a_temporary_root(tmp_path: Path, keys: dict[str, str]) -> None:
    data, ctl = tmp_path / "data", Systemctl()
    data.mkdir()
    sysm = system(tmp_path, ctl)
    # At boot, with nothing asked: only the status (SSH off).
    first = ra.apply(data, sysm, now=lambda: NOW)
    assert first == {"at": "2026-11-23T10:00:00+00:00", "enabled": False, "active": False,
                     "authorized": [], "keys": 0}
    assert ra.read_status(data) == first
    ra.submit(data, ra.Request(True, (keys["ed25519"], keys["rsa"]), by="admin"))
    status = ra.apply(data, sysm, now=lambda: NOW)
    assert ["systemctl", "enable", "--now", "ssh.service"] in ctl.calls
    assert status["active"] and status["enabled"] and status["keys"] == 2
    assert status["requested_by"] == "admin"
    written = sysm.authorized_keys.read_text()
    assert written == f"{keys['ed25519']}\n{keys['rsa']}\n"
    assert sysm.authorized_keys.stat().st_mode & 0o777 == 0o600
    assert sysm.authorized_keys.parent.stat().st_mode & 0o777 == 0o700
    assert not (data / "system" / ra.REQUEST_NAME).exists()  # consumed
    ra.submit(data, ra.Request(False, by="admin"))
    status = ra.apply(data, sysm, now=lambda: NOW)
    assert ["systemctl", "disable", "--now", "ssh.service"] in ctl.calls
    assert not status["active"] and status["keys"] == 0
    assert not sysm.authorized_keys.exists()  # off means no way in


def test_a_bad_request_is_consumed_and_reported(tmp_path: Path, keys: dict[str, str]) -> None:
    data, ctl = tmp_path / "data", Systemctl()
    (data / "system").mkdir(parents=True)
    (data / "system" / ra.REQUEST_NAME).write_text(
        json.dumps({"enabled": True, "keys": ['command="sh" ' + keys["ed25519"]]}))
    status = ra.apply(data, system(tmp_path, ctl), now=lambda: NOW)
    assert "unknown key type" in status["error"] and not status["active"]
    assert [c for c in ctl.calls if "enable" in c] == []
    assert not (data / "system" / ra.REQUEST_NAME).exists()
    # SSH on without a key is refused by the web side and the root side alike.
    with pytest.raises(ra.RequestError):
        ra.submit(data, ra.Request(True, ()))
    (data / "system" / ra.REQUEST_NAME).write_text('{"enabled": true, "keys": []}')
    assert "at least one public key" in ra.apply(data, system(tmp_path, ctl))["error"]


def test_systemctl_failure_is_reported(tmp_path: Path, keys: dict[str, str]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    ra.submit(data, ra.Request(True, (keys["ed25519"],)))
    status = ra.apply(data, system(tmp_path, Systemctl(fail=True)))
    assert status["error"] == "systemctl exited with 1" and not status["active"]


def test_links_planted_by_the_web_side_are_not_followed(tmp_path: Path,
                                                        keys: dict[str, str]) -> None:
    data, elsewhere = tmp_path / "data", tmp_path / "etc"
    data.mkdir()
    elsewhere.mkdir()
    # The request as a link to another file: not read, consumed, reported.
    (data / "system").mkdir()
    target = elsewhere / "secret"
    target.write_text('{"enabled": false}')
    (data / "system" / ra.REQUEST_NAME).symlink_to(target)
    status = ra.apply(data, system(tmp_path, Systemctl()))
    assert "cannot open the request" in status["error"] and target.exists()
    # The folder itself as a link: nothing is read or written through it.
    (data / "system" / ra.STATUS_NAME).unlink()
    (data / "system").rmdir()
    (data / "system").symlink_to(elsewhere)
    with pytest.raises(OSError):
        ra.apply(data, system(tmp_path, Systemctl()))
    assert sorted(os.listdir(elsewhere)) == ["secret"]


def test_the_cli_applies_and_prints_the_status(tmp_path: Path, keys: dict[str, str],
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # Only the request-free path: with no request the command reads the state and writes
    # the status, which needs no root (systemctl is-enabled/is-active answer any user).
    data = tmp_path / "data"
    data.mkdir()
    code = main(["--data-dir", str(data), "remote-access", "apply"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["keys"] == 0 and "error" not in printed and code == 0
    assert ra.read_status(data) == printed
