"""`pbx doctor`: is this box built and installed the way it must be?

Reads the facts from the running binaries, not from what we hope we built:
the limits compiled into pjsua2, the codecs its endpoint registers, the
OpenSSL it is linked to, and the database's schema and integrity.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .settings import Settings

MIN_CALLS = 256
REQUIRED_CODECS = ("PCMA", "PCMU", "G722", "opus")
BUILD_INFO = "pjsua2_build.json"


@dataclass
class Check:
    """One line of the report."""

    name: str
    ok: bool
    detail: str


@dataclass
class Report:
    """Everything doctor found."""

    checks: list[Check] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> None:
        """Record a check."""
        self.checks.append(Check(name, ok, detail))

    def text(self) -> str:
        """Human-readable report."""
        lines = [f"{'ok ' if c.ok else 'FAIL'}  {c.name:<14} {c.detail}" for c in self.checks]
        lines.append("all checks passed" if self.ok else "some checks FAILED")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able report."""
        return {"ok": self.ok, "facts": self.facts,
                "checks": [c.__dict__ for c in self.checks]}


def linked_openssl(module_file: str) -> tuple[str, str]:
    """(library path, version string) of the libcrypto a shared object links to."""
    out = subprocess.run(["ldd", module_file], capture_output=True, text=True, check=False)
    match = re.search(r"libcrypto\.so[^\s]*\s+=>\s+(\S+)", out.stdout)
    if not match:
        return "", "not linked (no TLS)"
    lib = ctypes.CDLL(match.group(1))
    lib.OpenSSL_version.restype = ctypes.c_char_p
    lib.OpenSSL_version.argtypes = [ctypes.c_int]
    return match.group(1), lib.OpenSSL_version(0).decode()


def pjsua2_facts() -> dict[str, Any]:
    """Import pjsua2 and read its version, compiled limits, codecs and OpenSSL."""
    import _pjsua2
    import pjsua2 as pj

    cfg = pj.EpConfig()
    facts: dict[str, Any] = {
        "module": _pjsua2.__file__,
        "max_calls": int(cfg.uaConfig.maxCalls),
        "max_media_ports": int(cfg.medConfig.maxMediaPorts),
    }
    info_file = Path(pj.__file__).with_name(BUILD_INFO)
    if info_file.exists():
        facts["build"] = json.loads(info_file.read_text())
    from .engine.quiet import stdout_silenced

    ep = pj.Endpoint()
    with stdout_silenced():
        ep.libCreate()
    try:
        ep_cfg = pj.EpConfig()
        ep_cfg.uaConfig.threadCnt = 0
        ep_cfg.uaConfig.mainThreadOnly = True
        ep_cfg.logConfig.level = 0
        ep_cfg.logConfig.consoleLevel = 0
        ep.libInit(ep_cfg)
        ep.audDevManager().setNullDev()
        facts["version"] = ep.libVersion().full
        facts["codecs"] = sorted(c.codecId for c in ep.codecEnum2())
    finally:
        ep.libDestroy()
    facts["openssl_library"], facts["openssl"] = linked_openssl(_pjsua2.__file__)
    return facts


def check_pjsua2(report: Report) -> None:
    """pjsua2 is our build with raised limits, the codecs and a current OpenSSL."""
    try:
        facts = pjsua2_facts()
    except Exception as exc:
        report.add("pjsua2", False, f"cannot load pjsua2: {exc} (run `make venv`)")
        return
    report.facts["pjsua2"] = facts
    build = facts.get("build", {})
    report.add("pjsua2", "build" in facts,
               f"{facts['version']} from {build.get('source', '?')}"
               if build else f"{facts['version']} (not our build: no {BUILD_INFO})")
    limits = build.get("limits", {})
    report.add("call limit", facts["max_calls"] >= MIN_CALLS,
               f"{facts['max_calls']} calls, {facts['max_media_ports']} bridge ports, "
               f"{limits.get('PJSUA_MAX_ACC', '?')} accounts, "
               f"{limits.get('PJSUA_MAX_PLAYERS', '?')} players, "
               f"{limits.get('PJSUA_MAX_RECORDERS', '?')} recorders, "
               f"{limits.get('PJ_IOQUEUE_MAX_HANDLES', '?')} sockets")
    codecs = facts["codecs"]
    missing = [c for c in REQUIRED_CODECS
               if not any(x.lower().startswith(c.lower() + "/") for x in codecs)]
    report.add("codecs", not missing,
               ", ".join(codecs) + (f"; MISSING {', '.join(missing)}" if missing else ""))
    version = facts["openssl"]
    report.add("OpenSSL", version.startswith("OpenSSL 3"),
               f"{version} ({facts['openssl_library'] or 'none'})")


def check_data(report: Report, settings: Settings) -> None:
    """Data directory writable with room; database current and intact."""
    data = settings.data_dir
    if not data.exists():
        report.add("data dir", False, f"{data} does not exist (run `pbx db migrate`)")
        return
    free_mb = shutil.disk_usage(data).free // (1024 * 1024)
    writable = os.access(data, os.W_OK)
    report.add("data dir", writable and free_mb > 200,
               f"{data}: {'writable' if writable else 'NOT writable'}, {free_mb} MiB free")
    report.facts["data_dir"] = {"path": str(data), "free_mb": free_mb}
    if not settings.db_path.exists():
        report.add("database", False, f"{settings.db_path} does not exist (run `pbx db migrate`)")
        return
    from .db import Database
    from .db.migrations import latest_version

    try:
        db = Database.open(settings.db_path, migrate=False)
    except Exception as exc:
        report.add("database", False, f"cannot open {settings.db_path}: {exc}")
        return
    try:
        version = db.schema_version()
        problems = db.integrity_check()
        mode = db.read().execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        db.close()
    latest = latest_version()
    report.facts["database"] = {"schema": version, "latest": latest, "journal_mode": mode}
    report.add("database", version == latest and not problems and mode == "wal",
               f"schema {version}/{latest}, journal {mode}, "
               + ("integrity ok" if not problems else f"integrity: {problems[:3]}"))


def run(settings: Settings) -> Report:
    """Run every check."""
    from .service import describe

    report = Report()
    check_pjsua2(report)
    check_data(report, settings)
    report.facts["systemd"] = describe()
    return report
