"""Update bundles: a signed flat apt repository of our package in one tar file.

`image/repo.sh bundle` writes `office-pbx_<version>_<arch>.pbxupdate`: InRelease (signed by
the vendor's key), Release, Release.gpg, Packages, Packages.gz and the .deb. The web UI checks
an uploaded bundle with `check_bundle` before offering it, and the privileged installer
(appliance/updater.py) checks its own copy again before apt, which checks it a third time
exactly as for a network update. Every refusal is a BundleError whose `code` names the
reason (the web UI translates by code) and whose text is English.

Standard library only: the installer runs as root while dpkg replaces the venv under it.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import struct
import subprocess
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

PACKAGE = "office-pbx"
SUFFIX = ".pbxupdate"
INDEX_FILES = ("InRelease", "Release", "Release.gpg", "Packages", "Packages.gz")
REQUIRED = ("InRelease", "Packages")
DEFAULT_KEYRING = Path("/usr/share/keyrings/office-pbx.gpg")
CHUNK = 256 * 1024
_DEB_NAME = re.compile(r"office-pbx_[0-9][A-Za-z0-9.+~%-]{0,100}_[a-z0-9]{1,16}\.deb")
# Debian policy 5.6.12: an optional epoch, an upstream part starting with a digit, and an
# optional revision after the last hyphen.
_VERSION = re.compile(r"(?:[0-9]{1,9}:)?[0-9][A-Za-z0-9.+~:-]{0,100}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_DIGITS = frozenset("0123456789")
_MACHINES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


class BundleError(ValueError):
    """The file is not an update this box can install; `code` says why, `detail` adds what."""

    def __init__(self, code: str, message: str, **detail: str) -> None:
        super().__init__(message)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Limits:
    """How much a bundle may hold."""

    members: int = 8
    index_bytes: int = 4 * 1024 * 1024
    deb_bytes: int = 512 * 1024 * 1024


@dataclass
class Member:
    """One file of a bundle: its size, SHA-256, and its bytes when it is a small index."""

    name: str
    size: int
    sha256: str
    data: bytes | None = None


@dataclass
class Contents:
    """What a structurally valid bundle holds (hashes computed while reading)."""

    members: dict[str, Member] = field(default_factory=dict)

    @property
    def deb(self) -> Member:
        """The bundle's one package file."""
        return next(m for m in self.members.values() if m.name.endswith(".deb"))


@dataclass(frozen=True)
class BundleInfo:
    """A bundle that passed every check: what it would install."""

    package: str
    version: str
    arch: str
    deb_name: str
    deb_size: int
    deb_sha256: str
    sha256: str  # of the whole bundle file
    size: int


def member_name(name: str) -> str:
    """The allowed bare name of a tar member (a leading ./ dropped), or BundleError. Pure."""
    bare = name[2:] if name.startswith("./") else name
    if bare in INDEX_FILES or _DEB_NAME.fullmatch(bare):
        return bare
    raise BundleError("unexpected_member", f"unexpected file in the bundle: {name[:80]!r}",
                      name=name[:80])


def read_bundle(fileobj: IO[bytes], dest: Path | None = None,
                limits: Limits = Limits()) -> Contents:
    """Read a bundle tar strictly: only the expected names, regular files, bounded sizes, no
    name twice, exactly one .deb. Index files are kept in memory; the .deb is hashed and,
    when `dest` (an existing empty directory) is given, every file is written there."""
    contents = Contents()
    try:
        with tarfile.open(fileobj=fileobj, mode="r|") as tar:
            for info in tar:
                if len(contents.members) >= limits.members:
                    raise BundleError("not_bundle", "too many files in the bundle")
                name = member_name(info.name)
                if not info.isreg():
                    raise BundleError("not_bundle", f"{name} is not a regular file "
                                      "(links, folders and devices are refused)")
                if name in contents.members:
                    raise BundleError("not_bundle", f"{name} appears twice")
                is_deb = name.endswith(".deb")
                if is_deb and any(m.endswith(".deb") for m in contents.members):
                    raise BundleError("not_bundle", "more than one package in the bundle")
                cap = limits.deb_bytes if is_deb else limits.index_bytes
                if info.size > cap:
                    raise BundleError("too_large", f"{name} is too large")
                src = tar.extractfile(info)
                if src is None:
                    raise BundleError("not_bundle", f"{name} cannot be read")
                contents.members[name] = _take(src, name, info.size, keep=not is_deb,
                                               dest=None if dest is None else dest / name)
    except BundleError:
        raise
    # tarfile's stream reader lets some damaged headers out as these.
    except (tarfile.TarError, EOFError, zlib.error, UnicodeError, ValueError, TypeError,
            struct.error) as exc:
        raise BundleError("not_bundle", f"not a readable bundle ({type(exc).__name__})") from None
    missing = [n for n in REQUIRED if n not in contents.members]
    if missing:
        raise BundleError("not_bundle", f"{missing[0]} is missing: not an update bundle",
                          name=missing[0])
    if not any(n.endswith(".deb") for n in contents.members):
        raise BundleError("not_bundle", "the bundle holds no package")
    return contents


def _take(src: IO[bytes], name: str, size: int, *, keep: bool, dest: Path | None) -> Member:
    digest = hashlib.sha256()
    kept = bytearray()
    out = None
    if dest is not None:
        # O_EXCL|O_NOFOLLOW: nothing planted in the folder is followed or overwritten.
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        out = os.fdopen(fd, "wb")
    try:
        seen = 0
        while True:
            block = src.read(CHUNK)
            if not block:
                break
            seen += len(block)
            if seen > size:
                raise BundleError("not_bundle", f"{name} is larger than its header says")
            digest.update(block)
            if keep:
                kept += block
            if out is not None:
                out.write(block)
        if seen != size:
            raise BundleError("not_bundle", "the bundle ends inside a file (truncated upload?)")
    finally:
        if out is not None:
            out.close()
    return Member(name, size, digest.hexdigest(), bytes(kept) if keep else None)


def parse_deb822(text: str) -> list[dict[str, str]]:
    """Paragraphs of a Debian control file (Release, Packages); continuation lines are kept
    with their newlines. BundleError on lines that are not fields. Pure."""
    paragraphs: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = ""
    for line in text.split("\n"):
        if not line.strip():
            if current:
                paragraphs.append(current)
            current, last = {}, ""
            continue
        if line[0] in " \t":
            if not last:
                raise BundleError("bad_index", "a continuation line without a field")
            current[last] += "\n" + line.strip()
            continue
        key, sep, value = line.partition(":")
        if not sep or not key or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{0,60}", key):
            raise BundleError("bad_index", f"not a field: {line[:60]!r}")
        if key in current:
            raise BundleError("bad_index", f"field {key} twice")
        current[key], last = value.strip(), key
    if current:
        paragraphs.append(current)
    return paragraphs


def release_hashes(release: str) -> dict[str, tuple[str, int]]:
    """The SHA256 list of a Release file: {name: (sha256, size)}. Pure."""
    paragraphs = parse_deb822(release)
    if len(paragraphs) != 1 or "SHA256" not in paragraphs[0]:
        raise BundleError("bad_index", "the Release file has no SHA256 list")
    hashes: dict[str, tuple[str, int]] = {}
    for line in paragraphs[0]["SHA256"].split("\n"):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 3 or not _HEX64.fullmatch(parts[0]) or not parts[1].isdigit():
            raise BundleError("bad_index", f"a bad SHA256 line in Release: {line[:80]!r}")
        hashes[parts[2]] = (parts[0], int(parts[1]))
    return hashes


def package_stanza(packages: str) -> dict[str, str]:
    """Our package's one paragraph of a Packages file, its fields checked. Pure."""
    paragraphs = parse_deb822(packages)
    if len(paragraphs) != 1 or paragraphs[0].get("Package") != PACKAGE:
        raise BundleError("bad_index", f"the bundle must hold exactly one {PACKAGE} package")
    stanza = paragraphs[0]
    for key in ("Version", "Architecture", "Filename", "Size", "SHA256"):
        if not stanza.get(key):
            raise BundleError("bad_index", f"Packages has no {key}")
    if not _VERSION.fullmatch(stanza["Version"]):
        raise BundleError("bad_index", f"a bad version {stanza['Version'][:60]!r}")
    if not stanza["Size"].isdigit() or not _HEX64.fullmatch(stanza["SHA256"]):
        raise BundleError("bad_index", "a bad Size or SHA256 in Packages")
    return stanza


def _order(c: str) -> int:
    # dpkg's ordering of non-digit characters: ~ before the end, letters before the rest.
    if c == "~":
        return -1
    if not c:
        return 0
    if c.isascii() and c.isalpha():
        return ord(c)
    return ord(c) + 256


def _compare_part(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        while (i < len(a) and a[i] not in _DIGITS) or (j < len(b) and b[j] not in _DIGITS):
            ac = _order(a[i] if i < len(a) and a[i] not in _DIGITS else "")
            bc = _order(b[j] if j < len(b) and b[j] not in _DIGITS else "")
            if ac != bc:
                return -1 if ac < bc else 1
            i += 1 if i < len(a) and a[i] not in _DIGITS else 0
            j += 1 if j < len(b) and b[j] not in _DIGITS else 0
        si, sj = i, j
        while i < len(a) and a[i] in _DIGITS:
            i += 1
        while j < len(b) and b[j] in _DIGITS:
            j += 1
        na, nb = int(a[si:i] or "0"), int(b[sj:j] or "0")
        if na != nb:
            return -1 if na < nb else 1
    return 0


def _split_version(v: str) -> tuple[int, str, str]:
    epoch, sep, rest = v.partition(":")
    if not sep or not epoch.isascii() or not epoch.isdigit():
        epoch, rest = "0", v
    upstream, hyphen, revision = rest.rpartition("-")
    if not hyphen:
        upstream, revision = rest, ""
    return int(epoch or "0"), upstream, revision


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as Debian orders versions a and b (dpkg --compare-versions). Pure."""
    ea, ua, ra = _split_version(a)
    eb, ub, rb = _split_version(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _compare_part(ua, ub) or _compare_part(ra, rb)


def machine_arch(machine: str | None = None) -> str:
    """The Debian architecture of this machine (amd64, arm64). Pure given `machine`."""
    m = machine if machine is not None else platform.machine()
    return _MACHINES.get(m.lower(), m.lower())


def verify_inrelease(inrelease: bytes, keyring: Path, work: Path) -> str:
    """The signed text of InRelease after gpgv verified it against `keyring` only."""
    if not keyring.is_file():
        raise BundleError("no_keyring", f"the trusted keyring {keyring} is missing",
                          path=str(keyring))
    home = Path(tempfile.mkdtemp(prefix="gpgv-", dir=work))
    signed, out = home / "InRelease", home / "Release.verified"
    signed.write_bytes(inrelease)
    try:
        r = subprocess.run(["gpgv", "--homedir", str(home), "--keyring", str(keyring),
                            "--status-fd", "1", "--output", str(out), str(signed)],
                           capture_output=True, text=True, timeout=60, check=False)
    except FileNotFoundError:
        raise BundleError("no_gpgv", "gpgv is missing: signatures cannot be checked") from None
    status = r.stdout
    if r.returncode != 0 or "[GNUPG:] VALIDSIG" not in status:
        if "NO_PUBKEY" in status or "ERRSIG" in status:
            raise BundleError("wrong_key", "the bundle is signed by a key this box does not "
                              "trust")
        if "BADSIG" in status:
            raise BundleError("bad_signature", "the bundle's signature does not match its "
                              "content (tampered)")
        raise BundleError("unsigned", "the bundle carries no valid signature")
    try:
        return out.read_text(encoding="utf-8")
    except (OSError, UnicodeError):
        raise BundleError("bad_index", "the signed Release is not text") from None


def check_contents(contents: Contents, release: str) -> dict[str, str]:
    """Packages and the .deb against the verified Release text; our package's stanza. Pure."""
    hashes = release_hashes(release)
    packages = contents.members["Packages"]
    if hashes.get("Packages") != (packages.sha256, packages.size):
        raise BundleError("tampered", "Packages does not match the signed Release (tampered)")
    assert packages.data is not None  # index files are kept by read_bundle
    try:
        stanza = package_stanza(packages.data.decode("utf-8"))
    except UnicodeError:
        raise BundleError("bad_index", "Packages is not text") from None
    deb = contents.deb
    filename = stanza["Filename"].removeprefix("./")
    if filename != deb.name:
        raise BundleError("tampered", f"Packages names {filename[:80]!r}, the bundle holds "
                          f"{deb.name!r}")
    if stanza["SHA256"] != deb.sha256 or int(stanza["Size"]) != deb.size:
        raise BundleError("tampered", "the package does not match its signed hash (tampered)")
    return stanza


def decide(stanza: dict[str, str], installed: str | None, arch: str) -> None:
    """Whether this box may install the package: its architecture, and newer than what is
    installed. Pure."""
    if stanza["Architecture"] not in (arch, "all"):
        raise BundleError("wrong_arch", f"the update is for {stanza['Architecture']}, this "
                          f"box is {arch}", arch=stanza["Architecture"], box=arch)
    if installed and compare_versions(stanza["Version"], installed) <= 0:
        raise BundleError("not_newer", f"version {stanza['Version']} is not newer than the "
                          f"installed {installed}", version=stanza["Version"],
                          installed=installed)


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def check_bundle(path: Path, *, keyring: Path, installed: str | None, arch: str,
                 work: Path, dest: Path | None = None, limits: Limits = Limits()) -> BundleInfo:
    """Every check of a bundle file (structure, signature, hashes, architecture, version);
    its files are written into `dest` when given. `work` holds gpgv's temporary files."""
    with path.open("rb") as fh:
        contents = read_bundle(fh, dest, limits)
    inrelease = contents.members["InRelease"].data
    assert inrelease is not None
    release = verify_inrelease(inrelease, keyring, work)
    stanza = check_contents(contents, release)
    decide(stanza, installed, arch)
    deb = contents.deb
    return BundleInfo(PACKAGE, stanza["Version"], stanza["Architecture"], deb.name, deb.size,
                      deb.sha256, file_sha256(path), path.stat().st_size)


def installed_version(version_file: Path = Path("/opt/pbx/VERSION")) -> str | None:
    """The version the box runs: the package's VERSION file, else this checkout's version."""
    try:
        text = version_file.read_text(encoding="utf-8").strip()
        if text:
            return text
    except OSError:
        pass
    try:
        from importlib.metadata import version

        return version("office-pbx")
    except Exception:
        return None
