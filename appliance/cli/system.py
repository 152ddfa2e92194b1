"""`pbx` commands for the box: run the engine and the web UI, database, config, state, resets."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

from .common import EXIT_USAGE, engine_call, open_db, read_secret, reload_engine, settings_of


def cmd_run(args: argparse.Namespace) -> int:
    """Run the engine in the foreground (systemd's ExecStart)."""
    # sqlite-utils imports numpy when it is installed (the CLI's audio import needs it):
    # 13 MB the engine never uses, on a Pi. The engine converts no audio, so it goes without.
    sys.modules.setdefault("numpy", None)  # type: ignore[arg-type]
    from ..box import Box
    from ..service import setup_logging

    s = settings_of(args, engine_sip_port=args.engine_sip_port)
    setup_logging(s.log_level)
    return asyncio.run(Box(s).main())


def cmd_web(args: argparse.Namespace) -> int:
    """Serve the web UI (HTTPS with the box's certificate unless web_tls = off)."""
    from webui import create_app
    from webui.server import serve

    from ..service import setup_logging

    s = settings_of(args, web_bind=args.bind, web_port=args.port)
    setup_logging(s.log_level, identifier="pbx-web")
    serve(create_app(s), s)
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    """Engine + web UI + demo configuration on localhost, for a laptop."""
    from .. import devmode

    return devmode.run(args)


def cmd_db_migrate(args: argparse.Namespace) -> int:
    """Create or upgrade the database to the latest schema."""
    with open_db(args, migrate=False) as db:
        before = db.schema_version()
        db.migrate()
        after = db.schema_version()
    print(f"database {db.path}: schema {before} -> {after}")
    return 0


def cmd_admin_create(args: argparse.Namespace) -> int:
    """Create a web administrator (the password is asked, never defaulted)."""
    from ..accounts import AccountError, create_web_user

    password = os.environ.get("PBX_ADMIN_PASSWORD") if args.password_env else None
    if password is None:
        password = read_secret("password", "passwords")
        if password is None:
            return 1
    with open_db(args) as db:
        try:
            create_web_user(db, args.username, password, "administrator")
        except AccountError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(f"administrator {args.username!r} created")
    return 0


def cmd_config_export(args: argparse.Namespace) -> int:
    """Print (or write) the configuration as YAML."""
    from ..config.yamlio import export_yaml

    with open_db(args) as db:
        text = export_yaml(db)
    if args.output and args.output != "-":
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def cmd_config_import(args: argparse.Namespace) -> int:
    """Validate a YAML file and replace the configuration with it."""
    from ..config import ConfigError
    from ..config.yamlio import import_yaml

    try:
        text = (sys.stdin.read() if args.file == "-"
                else Path(args.file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: cannot read {args.file}: {exc}", file=sys.stderr)
        return 1
    with open_db(args) as db:
        try:
            report = import_yaml(db, text)
        except ConfigError as exc:
            print(f"error: the configuration was not imported:\n{exc}", file=sys.stderr)
            return 1
    print(f"imported: {report}")
    if args.reload:
        return reload_engine(settings_of(args))
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    """Ask the running engine to reload its configuration."""
    return reload_engine(settings_of(args))


def cmd_status(args: argparse.Namespace) -> int:
    """Show the running engine's state."""
    code, status = engine_call(args, "GET", "/status")
    if code:
        return code
    if args.json:
        print(json.dumps(status, indent=2, ensure_ascii=False))
    else:
        eng = status["engine"]
        print(f"state:   {status['state']} (up {status['uptime_s']} s, "
              f"{status['reloads']} reload(s))")
        print(f"engine:  pjsua2 {eng['pjsua2_version']}, healthy={eng['healthy']}, "
              f"{eng['legs']} leg(s)")
        print(f"calls:   {status['calls']} in progress")
        sip = status.get("sip", {})
        print(f"sip:     edge {sip.get('edge')}, {sip.get('registrations', 0)} registration(s), "
              f"{sip.get('bans', 0)} ban(s) enforced {_enforcement(sip)}")
        print(f"phones:  {sip.get('reachable', 0)} reachable, "
              f"{sip.get('unreachable', 0)} unreachable, {sip.get('unknown', 0)} not probed yet")
    return 0


def _enforcement(sip: dict[str, object]) -> str:
    """How bans are enforced, for `pbx status`."""
    if sip.get("firewall") == "nftables":
        return "by the kernel (nftables) and the edge"
    reason = sip.get("firewall_reason")
    return f"in-process ({reason})" if reason else "in-process"


def cmd_bans(args: argparse.Namespace) -> int:
    """List the addresses the SIP edge has banned, or lift one ban."""
    if args.unban:
        code, result = engine_call(args, "POST", "/bans/remove", {"host": args.unban})
        if code:
            return code
        print(f"{args.unban}: " + ("ban lifted" if result.get("lifted") else "was not banned"))
        return 0 if result.get("lifted") else 1
    code, bans = engine_call(args, "GET", "/bans")
    if code:
        return code
    if not bans:
        print("no bans")
    for ban in bans:
        left = max(0, int(ban["until"] - time.time()))
        print(f"{ban['host']:<40} {left:>6} s left  {ban['reason']}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check the installation: pjsua2 build, limits, codecs, OpenSSL, database."""
    from .. import doctor

    report = doctor.run(settings_of(args))
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    else:
        print(report.text())
    return 0 if report.ok else 1


def cmd_factory_reset(args: argparse.Namespace) -> int:
    """Back to the first-run wizard: through the running engine, else on the database."""
    from ..control import ControlError, call
    from ..factory_reset import factory_reset

    s = settings_of(args)
    keep = s.factory_reset_keep_recordings if args.recordings is None else args.recordings
    what = "kept" if keep else "DELETED"
    if not args.yes:
        if not sys.stdin.isatty():
            print("error: pass --yes to reset without a terminal", file=sys.stderr)
            return EXIT_USAGE
        answer = input(f"Erase users, configuration and call history (recordings {what})? "
                       "Type 'reset': ")
        if answer.strip() != "reset":
            print("nothing changed")
            return 1
    try:
        call(s.control_socket, "GET", "/status", timeout=3)
        running = True
    except ControlError:
        running = False
    if running:
        try:
            report = call(s.control_socket, "POST", "/factory-reset",
                          {"keep_recordings": keep}, timeout=60)
        except ControlError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    else:
        with open_db(args) as db:
            report = factory_reset(db, s.data_dir, keep_recordings=keep,
                                   actor="cli").as_dict()
    print(f"factory reset done ({'through the engine' if running else 'engine not running'}):"
          f" {sum(report['rows'].values())} rows and {report['files']} files removed, "
          f"recordings {what.lower()}; open the web UI to run the first-run wizard")
    return 0


def cmd_remote_access_apply(args: argparse.Namespace) -> int:
    """As root (pbx-remote-access.service): carry out the web UI's SSH request, report."""
    from ..remote_access import System, apply

    status = apply(settings_of(args).data_dir, System())
    print(json.dumps(status))
    return 1 if status.get("error") else 0
