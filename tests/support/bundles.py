"""Real update bundles for tests: a small .deb made by dpkg-deb, signed by image/repo.sh
with a vendor key generated for the test (ed25519, gpg batch mode)."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REPO_SH = REPO / "image" / "repo.sh"


def make_key(keys: Path) -> Path:
    """A vendor key in `keys` (made once); its public keyring, as the box would trust it."""
    subprocess.run(["bash", str(REPO_SH), "key"], check=True, capture_output=True,
                   env={**os.environ, "PBX_KEYS": str(keys)}, timeout=60)
    return keys / "office-pbx.gpg"


def make_deb(out: Path, version: str, arch: str = "amd64", package: str = "office-pbx") -> Path:
    """A tiny package with a VERSION file, built by dpkg-deb."""
    tree = out / f"tree-{package}-{version}-{arch}"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "opt" / "pbx").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {package}\nVersion: {version}\nArchitecture: {arch}\n"
        "Maintainer: Tests <t@localhost>\nDescription: test package\n")
    (tree / "opt" / "pbx" / "VERSION").write_text(version + "\n")
    deb = out / f"{package}_{version}_{arch}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(deb)],
                   check=True, capture_output=True, timeout=60)
    return deb


def make_bundle(keys: Path, deb: Path, out: Path) -> Path:
    """image/repo.sh bundle: the signed repository of `deb` as one .pbxupdate file."""
    r = subprocess.run(["bash", str(REPO_SH), "bundle", str(out), str(deb)], check=True,
                       capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PBX_KEYS": str(keys)})
    return Path(r.stdout.strip().splitlines()[-1])


def members(bundle: Path) -> list[tuple[str, bytes]]:
    """The (name, bytes) of every file in a bundle, in order."""
    with tarfile.open(bundle) as tar:
        out = []
        for info in tar.getmembers():
            fh = tar.extractfile(info)
            out.append((info.name, fh.read() if fh else b""))
        return out


def write_tar(path: Path, files: list[tuple[str, bytes]]) -> Path:
    """A plain tar of (name, bytes) regular files."""
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def replaced(bundle: Path, out: Path, name: str, data: bytes) -> Path:
    """A copy of the bundle with one file's content replaced (a tampered bundle)."""
    files = [(n, data if n == name else d) for n, d in members(bundle)]
    return write_tar(out, files)
