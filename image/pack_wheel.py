"""Pack already-built files into a wheel, without building anything.

    python pack_wheel.py OUT_DIR NAME VERSION TAG FILE...

image/pjsua2-arm64.sh cross-compiles pjsua2's extension for another architecture, which
setuptools cannot do without being taught the target's sysconfig; the wheel format itself is
a zip with a dist-info folder (PEP 427, PEP 376 RECORD), so it is written here. The files
go to the wheel's root (platlib); every entry is stamped with SOURCE_DATE_EPOCH (default
1980-01-01), so the same inputs give the same bytes. Prints the wheel's path.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import time
import zipfile
from pathlib import Path

# Zip dates start in 1980: earlier stamps become its first day.
ZIP_EPOCH = 315532800


def record_hash(data: bytes) -> str:
    """A RECORD hash field: sha256, urlsafe base64 without padding."""
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def dist_info(name: str, version: str, tag: str, top_level: list[str]) -> dict[str, bytes]:
    """The dist-info files but RECORD, by their path inside the wheel."""
    info = f"{name}-{version}.dist-info"
    return {
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": (f"Wheel-Version: 1.0\nGenerator: office-pbx pack_wheel\n"
                          f"Root-Is-Purelib: false\nTag: {tag}\n").encode(),
        f"{info}/top_level.txt": "".join(f"{t}\n" for t in sorted(set(top_level))).encode(),
    }


def top_name(file_name: str) -> str:
    """The importable name of a top-level module file (_x.cpython-311-...so -> _x)."""
    return file_name.split(".", 1)[0]


def pack(out_dir: Path, name: str, version: str, tag: str, files: list[Path],
         epoch: int = 0) -> Path:
    """Writes NAME-VERSION-TAG.whl into out_dir, entries stamped with epoch; its path."""
    entries = {f.name: f.read_bytes() for f in files}
    entries.update(dist_info(name, version, tag, [top_name(f.name) for f in files]))
    record_path = f"{name}-{version}.dist-info/RECORD"
    record = "".join(f"{path},{record_hash(data)},{len(data)}\n" for path, data in entries.items())
    entries[record_path] = (record + f"{record_path},,\n").encode()
    stamp = time.gmtime(max(epoch, ZIP_EPOCH))
    wheel = out_dir / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in entries.items():
            zi = zipfile.ZipInfo(path, date_time=stamp[:6])
            zi.compress_type = zipfile.ZIP_DEFLATED
            # Executable bits for the shared object, as pip expects none for the rest.
            mode = 0o755 if path.endswith(".so") else 0o644
            zi.external_attr = (0o100000 | mode) << 16
            zf.writestr(zi, data)
    return wheel


def main(argv: list[str]) -> int:
    """Command line entry point."""
    if len(argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir, name, version, tag, *files = argv
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", ZIP_EPOCH))
    print(pack(Path(out_dir), name, version, tag, [Path(f) for f in files], epoch))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
