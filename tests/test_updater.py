"""The privileged installer (appliance/updater.py) up to apt: it takes the web UI's request,
re-checks its own copy of the bundle, refuses links and changed bundles, and makes the apt
source folder; real apt-get reads that folder with the source list it writes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from appliance import updater
from appliance.updater import BUNDLE, PENDING_META, REQUEST, Paths, read_status, run
from tests.support.bundles import make_bundle, make_deb, make_key

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def keyring(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trusted vendor key (made for these tests)."""
    return make_key(tmp_path_factory.mktemp("keys") / "vendor")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory, keyring: Path) -> Path:
    """A genuine bundle of version 5.0 for amd64."""
    out = tmp_path_factory.mktemp("bundle")
    return make_bundle(keyring.parent, make_deb(out, "5.0"), out)


@pytest.fixture
def paths(tmp_path: Path, keyring: Path) -> Paths:
    """A box in a folder: the web UI's requests folder, root's state, the apt source folder."""
    (tmp_path / "updates").mkdir()
    version = tmp_path / "VERSION"
    version.write_text("4.9\n")
    return Paths(requests=tmp_path / "updates", state=tmp_path / "state",
                 repo=tmp_path / "srv" / "pbx-repo", keyring=keyring, version_file=version)


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _ask(paths: Paths, bundle: Path, **over: str) -> dict[str, str]:
    (paths.requests / BUNDLE).write_bytes(bundle.read_bytes())
    (paths.requests / PENDING_META).write_text("{}")
    ask = {"id": "r1", "version": "5.0", "sha256": _sha256(bundle), **over}
    (paths.requests / REQUEST).write_text(json.dumps(ask))
    return ask


def test_request_is_taken_checked_and_unpacked(paths: Paths, bundle: Path) -> None:
    _ask(paths, bundle)
    status = run(paths, arch="amd64", install=False)
    assert status["state"] == "unpacked", status
    assert (status["id"], status["version"], status["from_version"]) == ("r1", "5.0", "4.9")
    assert read_status(paths.state) is not None
    assert read_status(paths.state)["state"] == "unpacked"  # type: ignore[index]
    assert sorted(p.name for p in paths.repo.iterdir()) == [
        "InRelease", "Packages", "Packages.gz", "Release", "Release.gpg",
        "office-pbx_5.0_amd64.deb"]
    assert oct(paths.repo.stat().st_mode & 0o777) == "0o755"
    # The request and the web UI's copy are consumed; root's copy is gone too.
    assert list(paths.requests.iterdir()) == []
    assert not (paths.state / "bundle.pbxupdate").exists()
    assert run(paths, arch="amd64", install=False) == {}  # nothing more to do


def test_a_second_bundle_replaces_the_folder(paths: Paths, bundle: Path, keyring: Path,
                                             tmp_path: Path) -> None:
    _ask(paths, bundle)
    run(paths, arch="amd64", install=False)
    newer = make_bundle(keyring.parent, make_deb(tmp_path, "5.1"), tmp_path / "b2")
    paths.version_file.write_text("5.0\n")
    _ask(paths, newer, id="r2", version="5.1")
    assert run(paths, arch="amd64", install=False)["state"] == "unpacked"
    assert [p.name for p in paths.repo.glob("*.deb")] == ["office-pbx_5.1_amd64.deb"]
    assert not paths.repo.with_name("pbx-repo.new").exists()
    assert not paths.repo.with_name("pbx-repo.old").exists()


def test_bundle_changed_after_the_admin_saw_it_is_refused(paths: Paths, bundle: Path) -> None:
    _ask(paths, bundle, sha256="0" * 64)
    status = run(paths, arch="amd64", install=False)
    assert (status["state"], status["code"]) == ("refused", "changed")


def test_root_rechecks_version_and_arch(paths: Paths, bundle: Path) -> None:
    paths.version_file.write_text("5.0\n")
    _ask(paths, bundle)
    assert run(paths, arch="amd64", install=False)["code"] == "not_newer"
    paths.version_file.write_text("1.0\n")
    _ask(paths, bundle)
    assert run(paths, arch="arm64", install=False)["code"] == "wrong_arch"
    assert not paths.repo.exists()


def test_links_planted_by_the_web_side_are_not_followed(paths: Paths, bundle: Path,
                                                        tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text('{"id": "x", "version": "5.0", "sha256": "y"}')
    (paths.requests / REQUEST).symlink_to(secret)
    status = run(paths, arch="amd64", install=False)
    assert (status["state"], status["code"]) == ("refused", "bad_request")
    assert not (paths.requests / REQUEST).exists() and secret.exists()

    (paths.requests / BUNDLE).symlink_to(bundle)
    (paths.requests / REQUEST).write_text(json.dumps(
        {"id": "r3", "version": "5.0", "sha256": _sha256(bundle)}))
    status = run(paths, arch="amd64", install=False)
    assert (status["state"], status["code"]) == ("refused", "not_bundle")
    assert bundle.exists()


def test_requests_folder_as_a_link_is_refused(paths: Paths, bundle: Path,
                                              tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / REQUEST).write_text("{}")
    os.rmdir(paths.requests)
    paths.requests.symlink_to(elsewhere)
    status = run(paths, arch="amd64", install=False)
    assert (status["state"], status["code"]) == ("refused", "bad_request")
    assert (elsewhere / REQUEST).exists()


@pytest.mark.parametrize("raw", [b"", b"[]", b"\xff", b'{"id": 1}', b"x" * 5000])
def test_bad_requests_are_refused(paths: Paths, raw: bytes) -> None:
    (paths.requests / REQUEST).write_bytes(raw)
    status = run(paths, arch="amd64", install=False)
    assert (status["state"], status["code"]) == ("refused", "bad_request")
    assert not (paths.requests / REQUEST).exists()


def test_apt_reads_the_folder_through_its_own_source_list(paths: Paths, bundle: Path,
                                                          tmp_path: Path) -> None:
    """Real apt-get update on the unpacked folder (apt checks the signature itself), with a
    private apt state so this machine's apt is untouched; the candidate is the bundle's."""
    _ask(paths, bundle)
    assert run(paths, arch="amd64", install=False)["state"] == "unpacked"
    apt = tmp_path / "apt"
    (apt / "lists" / "partial").mkdir(parents=True)
    (apt / "cache" / "archives" / "partial").mkdir(parents=True)
    (apt / "status").write_text("")
    private = ["-o", f"Dir::State::Lists={apt / 'lists'}", "-o", f"Dir::Cache={apt / 'cache'}",
               "-o", f"Dir::State::status={apt / 'status'}", "-o", "APT::Architecture=amd64",
               "-o", "APT::Architectures::=amd64", "-o", "Debug::NoLocking=1",
               # pytest's private temporary folders are closed to apt's _apt user.
               "-o", "APT::Sandbox::User=root"]
    update, install = updater.apt_commands(paths, "5.0")
    assert install[-1] == "office-pbx=5.0" and "--no-remove" in install
    r = subprocess.run([*update, *private], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "W:" not in r.stdout + r.stderr, r.stdout + r.stderr
    policy = subprocess.run(["apt-cache", "policy", "office-pbx", *update[3:-2], *private],
                            capture_output=True, text=True, timeout=60)
    assert "Candidate: 5.0" in policy.stdout, policy.stdout + policy.stderr

    # The same folder signed by a stranger: apt itself refuses it.
    (paths.repo / "InRelease").write_bytes(
        (paths.repo / "InRelease").read_bytes().replace(b"Label: office-pbx", b"Label: x"))
    r = subprocess.run([*update, *private], capture_output=True, text=True, timeout=60)
    assert "BADSIG" in r.stdout + r.stderr or "not signed" in r.stdout + r.stderr, r.stdout
