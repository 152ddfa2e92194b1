"""Update bundles (appliance/bundle.py): made by image/repo.sh with a real key, checked with
real gpgv; every refusal; the tar reader and the index parsers fuzzed; Debian version order
against dpkg itself."""

from __future__ import annotations

import contextlib
import io
import subprocess
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.bundle import (
    BundleError,
    Limits,
    check_bundle,
    compare_versions,
    decide,
    machine_arch,
    member_name,
    package_stanza,
    parse_deb822,
    read_bundle,
    release_hashes,
)
from tests.support.bundles import make_bundle, make_deb, make_key, members, replaced, write_tar

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two vendor keys: the trusted one and a stranger's."""
    root = tmp_path_factory.mktemp("keys")
    return {"trusted": make_key(root / "trusted"), "other": make_key(root / "other")}


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, Path]) -> Path:
    """A genuine bundle of version 2.0.0+5.gabc for amd64."""
    out = tmp_path_factory.mktemp("good")
    return make_bundle(keys["trusted"].parent, make_deb(out, "2.0.0+5.gabc"), out)


def _check(bundle: Path, keyring: Path, tmp_path: Path, installed: str | None = "1.0",
           arch: str = "amd64") -> object:
    return check_bundle(bundle, keyring=keyring, installed=installed, arch=arch,
                        work=tmp_path)


def _refused(bundle: Path, keyring: Path, tmp_path: Path, **kw: object) -> BundleError:
    with pytest.raises(BundleError) as info:
        _check(bundle, keyring, tmp_path, **kw)  # type: ignore[arg-type]
    return info.value


def test_genuine_bundle_passes_and_says_what_it_installs(
        good: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    info = _check(good, keys["trusted"], tmp_path)
    assert good.name == "office-pbx_2.0.0+5.gabc_amd64.pbxupdate"
    assert (info.version, info.arch, info.deb_name) == (  # type: ignore[attr-defined]
        "2.0.0+5.gabc", "amd64", "office-pbx_2.0.0+5.gabc_amd64.deb")
    names = [n for n, _ in members(good)]
    assert names == ["InRelease", "Release", "Release.gpg", "Packages", "Packages.gz",
                     "office-pbx_2.0.0+5.gabc_amd64.deb"]


def test_unpacked_into_a_folder(good: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    dest = tmp_path / "repo"
    dest.mkdir()
    check_bundle(good, keyring=keys["trusted"], installed=None, arch="amd64", work=tmp_path,
                 dest=dest)
    assert sorted(p.name for p in dest.iterdir()) == sorted(n for n, _ in members(good))
    assert (dest / "Packages").read_bytes() == dict(members(good))["Packages"]


def test_signed_by_another_key_is_refused(keys: dict[str, Path], tmp_path: Path) -> None:
    bundle = make_bundle(keys["other"].parent, make_deb(tmp_path, "3.0"), tmp_path / "o")
    assert _refused(bundle, keys["trusted"], tmp_path).code == "wrong_key"


def test_unsigned_is_refused(good: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    release = dict(members(good))["Release"]
    bundle = replaced(good, tmp_path / "u.pbxupdate", "InRelease", release)
    assert _refused(bundle, keys["trusted"], tmp_path).code == "unsigned"


def test_changed_signed_text_is_a_bad_signature(
        good: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    signed = dict(members(good))["InRelease"]
    assert b"Label: office-pbx" in signed
    bundle = replaced(good, tmp_path / "b.pbxupdate", "InRelease",
                      signed.replace(b"Label: office-pbx", b"Label: office-pbz"))
    assert _refused(bundle, keys["trusted"], tmp_path).code == "bad_signature"


def test_tampered_package_is_refused(good: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    name, deb = members(good)[-1]
    bundle = replaced(good, tmp_path / "t.pbxupdate", name, deb[:-1] + bytes([deb[-1] ^ 1]))
    err = _refused(bundle, keys["trusted"], tmp_path)
    assert err.code == "tampered" and "signed hash" in str(err)


def test_tampered_packages_index_is_refused(
        good: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    packages = dict(members(good))["Packages"]
    bundle = replaced(good, tmp_path / "p.pbxupdate", "Packages",
                      packages.replace(b"Version: 2.0.0", b"Version: 9.0.0"))
    err = _refused(bundle, keys["trusted"], tmp_path)
    assert err.code == "tampered" and "Packages" in str(err)


def test_wrong_architecture_is_refused(keys: dict[str, Path], tmp_path: Path) -> None:
    bundle = make_bundle(keys["trusted"].parent, make_deb(tmp_path, "3.0", "arm64"),
                         tmp_path / "a")
    err = _refused(bundle, keys["trusted"], tmp_path)
    assert (err.code, err.detail) == ("wrong_arch", {"arch": "arm64", "box": "amd64"})


@pytest.mark.parametrize("installed", ["2.0.0+5.gabc", "2.0.0+6", "1:0.1"])
def test_not_newer_is_refused(good: Path, keys: dict[str, Path], tmp_path: Path,
                              installed: str) -> None:
    err = _refused(good, keys["trusted"], tmp_path, installed=installed)
    assert err.code == "not_newer" and err.detail["installed"] == installed


def test_missing_keyring_is_said(good: Path, tmp_path: Path) -> None:
    assert _refused(good, tmp_path / "none.gpg", tmp_path).code == "no_keyring"


def test_another_package_is_refused(keys: dict[str, Path], tmp_path: Path) -> None:
    deb = make_deb(tmp_path, "3.0", package="office-pbx-other")
    bundle = make_bundle(keys["trusted"].parent, deb, tmp_path / "x")
    assert _refused(bundle, keys["trusted"], tmp_path).code == "unexpected_member"


def _tar_with(info: tarfile.TarInfo, data: bytes = b"") -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info.size = len(data) if info.isreg() else 0
        tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    buf.seek(0)
    return buf


@pytest.mark.parametrize("name", ["../InRelease", "/InRelease", "sub/Packages", "evil.sh",
                                  "office-pbx_1_amd64.deb/../x", "office-pbx_1_amd64.deb.sig",
                                  "other_1.0_amd64.deb", ""])
def test_unexpected_names_are_refused(name: str) -> None:
    with pytest.raises(BundleError):
        member_name(name)


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE,
                                  tarfile.DIRTYPE, tarfile.FIFOTYPE])
def test_links_devices_and_folders_are_refused(kind: bytes, tmp_path: Path) -> None:
    info = tarfile.TarInfo("Packages")
    info.type, info.linkname = kind, "/etc/shadow"
    with pytest.raises(BundleError, match="not a regular file"):
        read_bundle(_tar_with(info), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_sizes_counts_and_duplicates_are_bounded(tmp_path: Path) -> None:
    small = Limits(members=3, index_bytes=10, deb_bytes=20)
    big = write_tar(tmp_path / "big.tar", [("Packages", b"x" * 11)])
    with big.open("rb") as fh, pytest.raises(BundleError, match="too large"):
        read_bundle(fh, limits=small)
    twice = write_tar(tmp_path / "twice.tar", [("Packages", b"a"), ("./Packages", b"b")])
    with twice.open("rb") as fh, pytest.raises(BundleError, match="twice"):
        read_bundle(fh)
    many = write_tar(tmp_path / "many.tar", [(n, b"") for n in
                                             ("InRelease", "Release", "Packages", "Release.gpg")])
    with many.open("rb") as fh, pytest.raises(BundleError, match="too many"):
        read_bundle(fh, limits=small)
    two_debs = write_tar(tmp_path / "debs.tar", [("office-pbx_1_amd64.deb", b""),
                                                 ("office-pbx_2_amd64.deb", b"")])
    with two_debs.open("rb") as fh, pytest.raises(BundleError, match="more than one"):
        read_bundle(fh)
    no_deb = write_tar(tmp_path / "nodeb.tar", [("InRelease", b""), ("Packages", b"")])
    with no_deb.open("rb") as fh, pytest.raises(BundleError, match="no package"):
        read_bundle(fh)


def test_truncated_bundle_is_refused(good: Path, tmp_path: Path) -> None:
    raw = good.read_bytes()
    deb = members(good)[-1][1]
    inside_deb = raw.index(deb[:64]) + len(deb) // 2
    for cut in (100, 1024, raw.index(b"Package: office-pbx") + 10, inside_deb):
        with pytest.raises(BundleError):
            read_bundle(io.BytesIO(raw[:cut]))


def test_planted_file_in_dest_is_not_overwritten(good: Path, tmp_path: Path) -> None:
    (tmp_path / "Packages").symlink_to(tmp_path / "victim")
    with good.open("rb") as fh, pytest.raises(FileExistsError):
        read_bundle(fh, tmp_path)
    assert not (tmp_path / "victim").exists()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_reader_fuzz_random_bytes(data: bytes) -> None:
    """Any bytes: a bundle or BundleError, nothing else."""
    with contextlib.suppress(BundleError):
        read_bundle(io.BytesIO(data))


@settings(max_examples=200, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.data())
def test_reader_fuzz_mutated_bundle(good: Path, tmp_path_factory: pytest.TempPathFactory,
                                    data: st.DataObject) -> None:
    """A genuine bundle with bytes flipped, cut or inserted: BundleError or the same files,
    and nothing written outside the target folder."""
    raw = bytearray(good.read_bytes()[:12288])  # headers and the index files
    for _ in range(data.draw(st.integers(1, 6))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if op == "flip":
            raw[pos] ^= data.draw(st.integers(1, 255))
        elif op == "cut":
            del raw[pos:pos + data.draw(st.integers(1, 600))]
        else:
            raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=600))
    root = tmp_path_factory.mktemp("fuzz")
    dest = root / "dest"
    dest.mkdir()
    try:
        found = read_bundle(io.BytesIO(bytes(raw)), dest)
    except BundleError:
        found = None
    assert [p.name for p in root.iterdir()] == ["dest"]
    for p in dest.iterdir():
        assert p.is_file() and not p.is_symlink()
        if found is not None:
            assert p.name in found.members


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_index_parsers_fuzz(text: str) -> None:
    """Release and Packages parsers: a result or BundleError for any text."""
    for parse in (parse_deb822, release_hashes, package_stanza):
        with contextlib.suppress(BundleError):
            parse(text)


def test_release_hashes_and_stanza() -> None:
    h = "a" * 64
    assert release_hashes(f"Origin: x\nSHA256:\n {h} 12 Packages\n {h} 3 ./x.deb\n") == {
        "Packages": (h, 12), "./x.deb": (h, 3)}
    with pytest.raises(BundleError):
        release_hashes("Origin: x\n")
    with pytest.raises(BundleError, match="exactly one"):
        package_stanza("Package: office-pbx\n\nPackage: office-pbx\n")
    with pytest.raises(BundleError, match="bad version"):
        package_stanza(f"Package: office-pbx\nVersion: ;rm\nArchitecture: amd64\n"
                       f"Filename: a\nSize: 1\nSHA256: {h}\n")


def test_decide_is_pure() -> None:
    stanza = {"Version": "1.2", "Architecture": "all"}
    decide(stanza, "1.1", "arm64")
    decide(stanza, None, "amd64")
    with pytest.raises(BundleError, match="not newer"):
        decide(stanza, "1.2", "amd64")
    with pytest.raises(BundleError, match="for arm64"):
        decide({"Version": "9", "Architecture": "arm64"}, "1.1", "amd64")
    assert machine_arch("x86_64") == "amd64" and machine_arch("aarch64") == "arm64"


VERSION_PART = st.text(alphabet="0123456789abcXYZ.+~", min_size=0, max_size=8)


@st.composite
def debian_versions(draw: st.DrawFn) -> str:
    """Valid Debian versions: optional epoch, upstream starting with a digit, revision."""
    epoch = draw(st.sampled_from(["", "0:", "1:", "12:"]))
    upstream = draw(st.sampled_from("0123456789")) + draw(VERSION_PART)
    revision = draw(st.sampled_from(["", "-1", "-0ubuntu1", "-2~bpo1"]) | VERSION_PART.map(
        lambda r: "-" + ("1" + r)))
    return epoch + upstream + revision


def _dpkg_compare(a: str, b: str) -> int:
    for op, result in (("lt", -1), ("eq", 0)):
        if subprocess.run(["dpkg", "--compare-versions", a, op, b]).returncode == 0:
            return result
    return 1


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("1.0", "1.0", 0), ("1.0~rc1", "1.0", -1), ("1.0", "1.0+1", -1), ("1:0.1", "2.0", 1),
    ("0.1.0+120.gabc", "0.1.0+99.gfff", 1), ("1.0-1", "1.0-1.1", -1), ("1.0a", "1.0+", -1),
    ("1.00", "1.0", 0), ("0.1.0+12.g1234567.1", "0.1.0+12.g1234567", 1)])
def test_version_order_examples(a: str, b: str, expected: int) -> None:
    assert compare_versions(a, b) == expected == _dpkg_compare(a, b)


@settings(max_examples=150, deadline=None)
@given(debian_versions(), debian_versions())
def test_version_order_matches_dpkg(a: str, b: str) -> None:
    """Our comparison agrees with dpkg --compare-versions (the real peer)."""
    assert compare_versions(a, b) == _dpkg_compare(a, b), (a, b)
