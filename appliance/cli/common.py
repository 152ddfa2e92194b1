"""What every `pbx` command shares: settings, the database, the engine's control socket."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import settings as settings_mod
from ..settings import Settings

if TYPE_CHECKING:
    from ..db import Database

EXIT_USAGE = 2


def settings_of(args: argparse.Namespace, **extra: Any) -> Settings:
    return settings_mod.load(
        Path(args.config) if args.config else None,
        data_dir=args.data_dir,
        **extra,
    )


def open_db(args: argparse.Namespace, *, migrate: bool = True) -> Database:
    """The box's database (created, with its data directory, if missing)."""
    from ..db import Database

    s = settings_of(args)
    s.data_dir.mkdir(parents=True, exist_ok=True)
    return Database.open(s.db_path, migrate=migrate)


def read_secret(prompt: str, plural: str) -> str | None:
    """A secret from a pipe (one line), or typed twice at the terminal; None if they differ."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    secret = getpass.getpass(f"{prompt}: ")
    if getpass.getpass("again: ") != secret:
        print(f"error: the {plural} differ", file=sys.stderr)
        return None
    return secret


def reload_engine(s: Settings) -> int:
    from ..control import ControlError, call

    try:
        call(s.control_socket, "POST", "/reload")
    except ControlError as exc:
        print(f"warning: {exc} (the engine picks the change up when it starts)",
              file=sys.stderr)
        return 0
    print("engine reloaded")
    return 0


def engine_call(args: argparse.Namespace, method: str, path: str,
                 body: Any = None) -> tuple[int, Any]:
    """(exit code, reply) of a control API call; errors are printed."""
    from ..control import ControlError, call

    try:
        return 0, call(settings_of(args).control_socket, method, path, body, timeout=60.0)
    except ControlError as exc:
        unreachable = str(exc).startswith("cannot reach the engine")
        print(f"engine: not running ({exc})" if unreachable else f"error: {exc}",
              file=sys.stderr)
        return 3, None


def actor() -> str:
    """Who made a change, for the audit log."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        return "cli"
