"""Backup archives: write one as a stream, and read an uploaded one strictly.

A backup is a .tar.gz with `pbx-backup.json` (what it is), `pbx.sqlite3` (a consistent
snapshot made with SQLite's backup API, never a copy of the live WAL files) and, when asked,
`recordings/...` and `voicemail/...`. Reading refuses anything else: other names, absolute
paths, `..`, links, devices, too many or too large members. Nothing is ever written outside
the target directory.
"""

from __future__ import annotations

import io
import json
import os
import queue
import sqlite3
import stat
import struct
import tarfile
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from appliance.db import migrations

MANIFEST = "pbx-backup.json"
DATABASE = "pbx.sqlite3"
FILE_TREES = ("recordings", "voicemail")
FORMAT = 1
CHUNK = 64 * 1024


class ArchiveError(ValueError):
    """The archive is not a backup of this box (the message says why)."""


@dataclass(frozen=True)
class Limits:
    """How much an uploaded archive may hold."""

    members: int = 200_000
    member_bytes: int = 2 * 1024**3
    total_bytes: int = 16 * 1024**3
    manifest_bytes: int = 64 * 1024


@dataclass
class Extracted:
    """What a validated archive held."""

    root: Path
    manifest: dict[str, Any]
    database: Path
    trees: set[str] = field(default_factory=set)
    files: int = 0
    bytes: int = 0


def snapshot_database(source: Path, dest: Path) -> None:
    """A consistent copy of the live database through SQLite's backup API."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=10)
    try:
        dst = sqlite3.connect(str(dest))
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
        finally:
            dst.close()
    finally:
        src.close()


class _QueueWriter:
    """A write-only file whose bytes go to a bounded queue (the response reads them)."""

    def __init__(self, chunks: queue.Queue[bytes | BaseException | None]) -> None:
        self.chunks = chunks
        self.buffer = bytearray()

    def write(self, data: bytes) -> int:
        self.buffer += data
        if len(self.buffer) >= CHUNK:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self.buffer:
            self.chunks.put(bytes(self.buffer))
            self.buffer.clear()


def _tree_files(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                yield path


def stream_backup(db_snapshot: Path, manifest: dict[str, Any],
                  trees: dict[str, Path]) -> Iterator[bytes]:
    """The .tar.gz as chunks, built in a thread as the client reads (never all in memory).

    `trees` maps an archive folder (recordings, voicemail) to the directory to include.
    """
    chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=16)
    stop = threading.Event()

    def produce() -> None:
        writer = _QueueWriter(chunks)
        try:
            with tarfile.open(fileobj=writer, mode="w|gz") as tar:  # type: ignore[call-overload]
                body = json.dumps(manifest, indent=1).encode()
                info = tarfile.TarInfo(MANIFEST)
                info.size, info.mtime, info.mode = len(body), int(time.time()), 0o600
                tar.addfile(info, io.BytesIO(body))
                tar.add(str(db_snapshot), arcname=DATABASE, recursive=False)
                for name, root in trees.items():
                    for path in _tree_files(root):
                        if stop.is_set():
                            return
                        arcname = f"{name}/{path.relative_to(root).as_posix()}"
                        tar.add(str(path), arcname=arcname, recursive=False)
            writer.flush()
            chunks.put(None)
        except BaseException as exc:  # handed to the reader, which raises it
            chunks.put(exc)

    thread = threading.Thread(target=produce, name="backup-stream", daemon=True)
    thread.start()
    try:
        while True:
            item = chunks.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                chunks.get_nowait()
            except queue.Empty:
                thread.join(0.05)
        db_snapshot.unlink(missing_ok=True)


def check_name(name: str) -> tuple[str, ...]:
    """The parts of a member name allowed in a backup, or ArchiveError. Pure."""
    if not name or len(name) > 400 or "\\" in name or "\x00" in name:
        raise ArchiveError(f"bad member name {name[:80]!r}")
    path = PurePosixPath(name)
    if path.is_absolute():
        raise ArchiveError(f"absolute path {name[:80]!r}")
    parts = tuple(p for p in path.parts if p != ".")
    if not parts or any(p in ("..", "") for p in parts):
        raise ArchiveError(f"path outside the archive {name[:80]!r}")
    if parts in ((MANIFEST,), (DATABASE,)):
        return parts
    if parts[0] in FILE_TREES:
        return parts
    raise ArchiveError(f"unexpected member {name[:80]!r}")


def _inside(root: Path, parts: tuple[str, ...]) -> Path:
    target = root.joinpath(*parts)
    resolved_root = root.resolve()
    if not target.resolve().is_relative_to(resolved_root) or target.resolve() == resolved_root:
        raise ArchiveError(f"path outside the archive {'/'.join(parts)[:80]!r}")
    return target


def _copy(src: IO[bytes], dest: Path, size: int) -> None:
    # O_EXCL|O_NOFOLLOW: a name seen twice or a planted link is refused, not followed.
    try:
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o640)
    except FileExistsError:
        raise ArchiveError(f"{dest.name[:80]!r} appears twice") from None
    written = 0
    with os.fdopen(fd, "wb") as out:
        while True:
            block = src.read(CHUNK)
            if not block:
                break
            written += len(block)
            if written > size:
                raise ArchiveError("a member is larger than its header says")
            out.write(block)
    if written != size:
        raise ArchiveError("the archive ends inside a member")


def read_archive(fileobj: IO[bytes], root: Path, limits: Limits = Limits()) -> Extracted:
    """Unpack a backup into the empty directory `root`, checking every member; ArchiveError
    for anything that is not a backup of this kind."""
    files = total = count = 0
    trees: set[str] = set()
    manifest: dict[str, Any] | None = None
    have_db = False
    try:
        with tarfile.open(fileobj=fileobj, mode="r|gz") as tar:  # type: ignore[call-overload]
            for member in tar:
                count += 1
                if count > limits.members:
                    raise ArchiveError("too many members")
                parts = check_name(member.name)
                if member.isdir():
                    if len(parts) == 1 and parts[0] not in FILE_TREES:
                        raise ArchiveError(f"unexpected folder {member.name[:80]!r}")
                    _inside(root, parts).mkdir(parents=True, exist_ok=True)
                    continue
                if not member.isreg():
                    raise ArchiveError(f"{member.name[:80]!r} is not a regular file "
                                       "(links and devices are refused)")
                if member.size > limits.member_bytes:
                    raise ArchiveError(f"{member.name[:80]!r} is too large")
                total += member.size
                if total > limits.total_bytes:
                    raise ArchiveError("the archive is too large")
                if len(parts) == 1 and parts[0] in FILE_TREES:
                    raise ArchiveError(f"unexpected member {member.name[:80]!r}")
                src = tar.extractfile(member)
                if src is None:
                    raise ArchiveError(f"{member.name[:80]!r} cannot be read")
                if parts == (MANIFEST,):
                    if member.size > limits.manifest_bytes or manifest is not None:
                        raise ArchiveError("bad manifest")
                    manifest = _manifest(src.read(member.size + 1))
                    continue
                target = _inside(root, parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                if not target.parent.resolve().is_relative_to(root.resolve()):
                    raise ArchiveError("path outside the archive")
                _copy(src, target, member.size)
                if parts == (DATABASE,):
                    have_db = True
                else:
                    trees.add(parts[0])
                    files += 1
    except ArchiveError:
        raise
    # tarfile's stream reader lets some truncated gzip headers out as TypeError/struct.error.
    except (tarfile.TarError, EOFError, zlib.error, OSError, UnicodeError, ValueError,
            TypeError, struct.error) as exc:
        raise ArchiveError(f"not a readable .tar.gz ({type(exc).__name__})") from None
    if manifest is None:
        raise ArchiveError(f"{MANIFEST} is missing: not a backup of this box")
    if not have_db:
        raise ArchiveError(f"{DATABASE} is missing")
    return Extracted(root, manifest, root / DATABASE, trees, files, total)


def _manifest(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ArchiveError("the manifest is not JSON") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ArchiveError("not a backup of this box (unknown format)")
    return data


def check_database(path: Path) -> int:
    """The schema version of a restored database file after SQLite's own checks; ArchiveError
    when it is not a healthy database of ours or is newer than this software."""
    try:
        with path.open("rb") as fh:
            if fh.read(16) != b"SQLite format 3\x00":
                raise ArchiveError(f"{DATABASE} is not an SQLite database")
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
            if [r[0] for r in rows] != ["ok"]:
                raise ArchiveError(f"{DATABASE} is damaged: {rows[0][0]!s:.200}")
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            tables = {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise ArchiveError(f"{DATABASE} cannot be read: {exc}") from None
    if version > migrations.latest_version():
        raise ArchiveError(f"the backup is from newer software (schema {version}, "
                           f"this box knows {migrations.latest_version()})")
    if version < 1 or "schema_migrations" not in tables:
        raise ArchiveError(f"{DATABASE} is not this box's database")
    return version


def copy_into(source: Path, live: Path) -> None:
    """Replace the live database's content with `source` in one step (SQLite's backup API
    takes the write lock; other processes see the new content with their next read)."""
    src = sqlite3.connect(str(source))
    try:
        dst = sqlite3.connect(str(live), timeout=30)
        try:
            dst.execute("PRAGMA busy_timeout = 30000")
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


def swap_tree(new: Path, live: Path) -> None:
    """Put `new` where `live` is: rename aside, rename into place, then remove the old."""
    old = live.with_name(f".{live.name}.old-{os.getpid()}-{int(time.time())}")
    had = live.exists()
    if had:
        live.rename(old)
    try:
        new.rename(live)
    except OSError:
        if had:
            old.rename(live)
        raise
    if had:
        _remove_tree(old)


def _remove_tree(path: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(path, topdown=False):
        for name in filenames:
            os.unlink(os.path.join(dirpath, name))
        for name in dirnames:
            full = os.path.join(dirpath, name)
            if stat.S_ISLNK(os.lstat(full).st_mode):
                os.unlink(full)
            else:
                os.rmdir(full)
    os.rmdir(path)
