"""The `pbx` command: run the engine or the web UI, and administer the box."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import settings as settings_mod
from .settings import Settings, SettingsError

if TYPE_CHECKING:
    from .db import Database

EXIT_USAGE = 2


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    return settings_mod.load(
        Path(args.config) if args.config else None,
        data_dir=args.data_dir,
        **extra,
    )


def _open_db(args: argparse.Namespace, *, migrate: bool = True) -> Database:
    """The box's database (created, with its data directory, if missing)."""
    from .db import Database

    s = _settings(args)
    s.data_dir.mkdir(parents=True, exist_ok=True)
    return Database.open(s.db_path, migrate=migrate)


def cmd_run(args: argparse.Namespace) -> int:
    """Run the engine in the foreground (systemd's ExecStart)."""
    # sqlite-utils imports numpy when it is installed (the CLI's audio import needs it):
    # 13 MB the engine never uses, on a Pi. The engine converts no audio, so it goes without.
    sys.modules.setdefault("numpy", None)  # type: ignore[arg-type]
    from .box import Box
    from .service import setup_logging

    s = _settings(args, engine_sip_port=args.engine_sip_port)
    setup_logging(s.log_level)
    return asyncio.run(Box(s).main())


def cmd_web(args: argparse.Namespace) -> int:
    """Serve the web UI (HTTPS with the box's certificate unless web_tls = off)."""
    from webui import create_app
    from webui.server import serve

    from .service import setup_logging

    s = _settings(args, web_bind=args.bind, web_port=args.port)
    setup_logging(s.log_level, identifier="pbx-web")
    serve(create_app(s), s)
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    """Engine + web UI + demo configuration on localhost, for a laptop."""
    from . import devmode

    return devmode.run(args)


def cmd_db_migrate(args: argparse.Namespace) -> int:
    """Create or upgrade the database to the latest schema."""
    with _open_db(args, migrate=False) as db:
        before = db.schema_version()
        db.migrate()
        after = db.schema_version()
    print(f"database {db.path}: schema {before} -> {after}")
    return 0


def _read_secret(prompt: str, plural: str) -> str | None:
    """A secret from a pipe (one line), or typed twice at the terminal; None if they differ."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    secret = getpass.getpass(f"{prompt}: ")
    if getpass.getpass("again: ") != secret:
        print(f"error: the {plural} differ", file=sys.stderr)
        return None
    return secret


def cmd_admin_create(args: argparse.Namespace) -> int:
    """Create a web administrator (the password is asked, never defaulted)."""
    from .accounts import AccountError, create_web_user

    password = os.environ.get("PBX_ADMIN_PASSWORD") if args.password_env else None
    if password is None:
        password = _read_secret("password", "passwords")
        if password is None:
            return 1
    with _open_db(args) as db:
        try:
            create_web_user(db, args.username, password, "administrator")
        except AccountError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(f"administrator {args.username!r} created")
    return 0


def cmd_config_export(args: argparse.Namespace) -> int:
    """Print (or write) the configuration as YAML."""
    from .config.yamlio import export_yaml

    with _open_db(args) as db:
        text = export_yaml(db)
    if args.output and args.output != "-":
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def cmd_config_import(args: argparse.Namespace) -> int:
    """Validate a YAML file and replace the configuration with it."""
    from .config import ConfigError
    from .config.yamlio import import_yaml

    try:
        text = (sys.stdin.read() if args.file == "-"
                else Path(args.file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: cannot read {args.file}: {exc}", file=sys.stderr)
        return 1
    with _open_db(args) as db:
        try:
            report = import_yaml(db, text)
        except ConfigError as exc:
            print(f"error: the configuration was not imported:\n{exc}", file=sys.stderr)
            return 1
    print(f"imported: {report}")
    if args.reload:
        return _reload(_settings(args))
    return 0


def _reload(s: Settings) -> int:
    from .control import ControlError, call

    try:
        call(s.control_socket, "POST", "/reload")
    except ControlError as exc:
        print(f"warning: {exc} (the engine picks the change up when it starts)",
              file=sys.stderr)
        return 0
    print("engine reloaded")
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    """Ask the running engine to reload its configuration."""
    return _reload(_settings(args))


def cmd_status(args: argparse.Namespace) -> int:
    """Show the running engine's state."""
    code, status = _engine_call(args, "GET", "/status")
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


def cmd_trunks(args: argparse.Namespace) -> int:
    """Show the running engine's SIP trunks and FXO gateways."""
    code, trunks = _engine_call(args, "GET", "/trunks")
    if code:
        return code
    if args.json:
        print(json.dumps(trunks, indent=2, ensure_ascii=False))
        return 0
    if not trunks:
        print("no SIP trunks or FXO gateways configured")
        return 0
    for t in trunks:
        print(f"{t['line']:<16} {t['kind']:<12} {t['state']:<16} "
              f"{t['calls']}/{t['channels']} channel(s)  {_trunk_detail(t)}")
    return 0


def cmd_trunks_test(args: argparse.Namespace) -> int:
    """Place a test call out through a trunk; exit 0 if it was answered."""
    from .control import ControlError, call

    s = _settings(args)
    body = {"line": args.line, "number": args.number, "hold_s": str(args.hold)}
    if args.caller_id:
        body["caller_id"] = args.caller_id
    try:
        result = call(s.control_socket, "POST", "/trunks/test-call", body, timeout=90)
    except ControlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print(f"{result['line']} -> {result['number']}: "
              f"{'answered' if result['answered'] else 'not answered'} "
              f"({result['code']} {result['reason']}, {result['seconds']} s)")
    return 0 if result["answered"] else 1


def _trunk_detail(t: dict[str, Any]) -> str:
    """The interesting part of a trunk's state, for `pbx trunks`."""
    parts = []
    if t.get("last_code"):
        parts.append(f"last {t['last_code']} {t.get('last_reason', '')}".rstrip())
    if t.get("expires") is not None:
        parts.append(f"expires in {t['expires']} s")
    if t.get("next_retry") is not None:
        parts.append(f"retry in {t['next_retry']} s")
    if t.get("contacts"):
        parts.append("at " + ", ".join(t["contacts"]))
    if t.get("problem"):
        parts.append(f"unusable: {t['problem']}")
    return "; ".join(parts)


def _enforcement(sip: dict[str, object]) -> str:
    """How bans are enforced, for `pbx status`."""
    if sip.get("firewall") == "nftables":
        return "by the kernel (nftables) and the edge"
    reason = sip.get("firewall_reason")
    return f"in-process ({reason})" if reason else "in-process"


def _actor() -> str:
    """Who made a change, for the audit log."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        return "cli"


def _read_sip_password() -> str | None:
    """A password from standard input: asked twice on a terminal, else the first line."""
    if sys.stdin.isatty():
        password = getpass.getpass("SIP password: ")
        if getpass.getpass("again: ") != password:
            print("error: the passwords differ", file=sys.stderr)
            return None
        return password
    line = sys.stdin.readline()
    if not line:
        print("error: no password on standard input", file=sys.stderr)
        return None
    return line.rstrip("\r\n")


def _phone_hint(s: Settings, username: str, realm: str, password: str | None) -> None:
    """How to set up the phone, with a generated password shown this once."""
    host = s.sip_bind if s.sip_bind not in ("0.0.0.0", "::", "") else "<this box's address>"
    shown = (f"{password}   (shown only now: write it down)" if password is not None
             else "the one you gave")
    print("set up the phone's SIP account with:")
    print(f"  registrar / server: {host}:{s.sip_port}")
    print(f"  user name:          {username}   (also the authentication user)")
    print(f"  password:           {shown}")
    print(f"  realm:              {realm}   (most phones learn it from the box)")


def cmd_bans(args: argparse.Namespace) -> int:
    """List the addresses the SIP edge has banned, or lift one ban."""
    if args.unban:
        code, result = _engine_call(args, "POST", "/bans/remove", {"host": args.unban})
        if code:
            return code
        print(f"{args.unban}: " + ("ban lifted" if result.get("lifted") else "was not banned"))
        return 0 if result.get("lifted") else 1
    code, bans = _engine_call(args, "GET", "/bans")
    if code:
        return code
    if not bans:
        print("no bans")
    for ban in bans:
        left = max(0, int(ban["until"] - time.time()))
        print(f"{ban['host']:<40} {left:>6} s left  {ban['reason']}")
    return 0


def cmd_ext_list(args: argparse.Namespace) -> int:
    """List the extensions and their devices."""
    from .extensions import list_extensions

    with _open_db(args) as db:
        items = list_extensions(db)
    if args.json:
        print(json.dumps([item.as_dict() for item in items], indent=2, ensure_ascii=False))
        return 0
    if not items:
        print("no extensions yet (add one with `pbx ext add EXT NAME`)")
    for item in items:
        devices = ", ".join(
            f"{d.username} ({d.kind}{', md5' if d.auth == 'md5' else ''}"
            f"{', ' + d.static_contact if d.static_contact else ''})"
            for d in item.devices) or "no devices"
        flags = "".join(f"  [{f}]" for f, on in (("administrator", item.role != "user"),
                                                  ("DND", item.dnd),
                                                  ("disabled", not item.enabled)) if on)
        print(f"{item.extension:<7} {item.name:<28} {devices}{flags}")
    return 0


def cmd_ext_add(args: argparse.Namespace) -> int:
    """Add an extension with one desk phone; prints its SIP account."""
    from .config import ConfigError
    from .extensions import add_extension

    password = _read_sip_password() if args.password_stdin else None
    if args.password_stdin and password is None:
        return 1
    s = _settings(args)
    with _open_db(args) as db:
        try:
            result = add_extension(db, args.extension, args.name, password=password,
                                   username=args.username, role=args.role, email=args.email,
                                   auth=args.auth, actor=_actor())
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(f"extension {result.extension} ({result.name}) added")
    _phone_hint(s, result.username, result.realm, result.password)
    return _reload(s)


def cmd_ext_passwd(args: argparse.Namespace) -> int:
    """Give a device a new SIP password (generated unless --password-stdin)."""
    from .config import ConfigError
    from .extensions import set_password

    password = _read_sip_password() if args.password_stdin else None
    if args.password_stdin and password is None:
        return 1
    with _open_db(args) as db:
        try:
            new = set_password(db, args.username, password, actor=_actor())
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if password is None:
        print(f"new SIP password of {args.username}: {new}   (shown only now: write it down)")
    else:
        print(f"SIP password of {args.username} changed")
    print("the phone must be given the new password; the old one no longer works")
    return _reload(_settings(args))


def cmd_ext_remove(args: argparse.Namespace) -> int:
    """Remove an extension and its devices (asks first unless --yes)."""
    from .config import ConfigError
    from .extensions import list_extensions, remove_extension

    with _open_db(args) as db:
        if not args.yes:
            if not sys.stdin.isatty():
                print(f"error: removing extension {args.extension} needs --yes "
                      "(there is no terminal to ask)", file=sys.stderr)
                return EXIT_USAGE
            found = [e for e in list_extensions(db) if e.extension == args.extension.strip()]
            if found:
                devices = ", ".join(d.username for d in found[0].devices) or "none"
                answer = input(f"remove extension {found[0].extension} ({found[0].name}) and "
                               f"its devices ({devices})? Call history is kept. [y/N] ")
                if answer.strip().lower() not in ("y", "yes"):
                    print("nothing removed")
                    return 1
        try:
            result = remove_extension(db, args.extension, actor=_actor())
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(f"extension {result.extension} ({result.name}) removed, with device(s) "
          f"{', '.join(result.usernames) or 'none'}; call history is kept")
    if result.left:
        print(f"also taken out of: {', '.join(result.left)}")
    return _reload(_settings(args))


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check the installation: pjsua2 build, limits, codecs, OpenSSL, database."""
    from . import doctor

    report = doctor.run(_settings(args))
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    else:
        print(report.text())
    return 0 if report.ok else 1


def cmd_prompts_list(args: argparse.Namespace) -> int:
    """List the prompt keys: built-in files and the admin's recordings."""
    from .prompts import list_prompts

    s = _settings(args)
    with _open_db(args) as db:
        rows = list_prompts(db, s.data_dir, s.builtin_prompts_dir)
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=2, ensure_ascii=False))
        return 0
    if not any(r.builtin for r in rows):
        print(f"note: no built-in prompts in {s.builtin_prompts_dir} (run `make prompts`)",
              file=sys.stderr)
    for r in rows:
        builtin = ",".join(r.builtin) or "-"
        own = ""
        if r.path is not None:
            seconds = f", {r.duration_s:.1f} s" if r.duration_s is not None else ""
            missing = "" if r.present else "  [file missing]"
            label = f" \"{r.name}\"" if r.name else ""
            own = f"{r.path} ({r.language or 'any language'}{seconds}){label}{missing}"
        print(f"{r.key:<22} built-in: {builtin:<6} {own or '-'}")
    return 0


def cmd_prompts_import(args: argparse.Namespace) -> int:
    """Convert a WAV or MP3 file and store it as the prompt KEY."""
    from .prompts import PromptError, store_prompt
    from .prompts.convert import MAX_BYTES

    path = Path(args.file)
    try:
        if path.stat().st_size > MAX_BYTES:
            print(f"error: {path} is larger than {MAX_BYTES // (1024 * 1024)} MB",
                  file=sys.stderr)
            return 1
        data = path.read_bytes()
    except OSError as exc:
        print(f"error: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    s = _settings(args)
    with _open_db(args) as db:
        try:
            stored = store_prompt(db, s.data_dir, args.key, data, path.name,
                                  language=args.language, name=args.name or "", actor=_actor())
        except PromptError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(f"prompt {stored.key}: {stored.duration_s:.1f} s, "
          f"{stored.language or 'any language'}, stored as {s.data_dir / stored.path}")
    return _reload(s)


def _engine_call(args: argparse.Namespace, method: str, path: str,
                 body: Any = None) -> tuple[int, Any]:
    """(exit code, reply) of a control API call; errors are printed."""
    from .control import ControlError, call

    try:
        return 0, call(_settings(args).control_socket, method, path, body, timeout=60.0)
    except ControlError as exc:
        unreachable = str(exc).startswith("cannot reach the engine")
        print(f"engine: not running ({exc})" if unreachable else f"error: {exc}",
              file=sys.stderr)
        return 3, None


def _line_row(line: dict[str, Any]) -> str:
    """One line of `pbx lines`."""
    key = line.get("key") or "(none)"
    state = line.get("state", "?")
    if state == "unassigned":
        modem = line.get("modem") or {}
        return (f"{'-':<12} unassigned  modem {line.get('imei')} ({modem.get('profile')}) on "
                f"{modem.get('usb_path')}: no SIM line configured for it")
    dbm = line.get("signal_dbm")
    signal = f"{dbm} dBm" if dbm is not None else "no signal"
    balance = line.get("balance") or {}
    money = (f"  balance {balance.get('amount')} {balance.get('currency') or ''}".rstrip()
             if balance else "")
    call = line.get("call")
    busy = f"  call {call['direction']} {call['remote'] or '?'} ({call['state']})" if call else ""
    return (f"{key:<12} {state:<10}  {line.get('operator') or '-'}  {signal}  "
            f"{line.get('registration') or '-'}  SIM {line.get('sim') or '-'}  "
            f"number {line.get('own_number') or '-'}  IMEI {line.get('imei') or '-'}"
            f"{money}{busy}\n{'':<12} {line.get('detail', '')}")


def cmd_lines(args: argparse.Namespace) -> int:
    """List the lines with their state and health."""
    code, lines = _engine_call(args, "GET", "/lines")
    if code:
        return code
    if args.json:
        print(json.dumps(lines, indent=2, ensure_ascii=False))
        return 0
    if not lines:
        print("no lines configured")
    for line in lines:
        print(_line_row(line))
    return 0


def cmd_sms_send(args: argparse.Namespace) -> int:
    """Send an SMS through a SIM line."""
    code, result = _engine_call(args, "POST", "/sms",
                                {"line": args.line, "to": args.to, "text": args.text})
    if code:
        return code
    print(f"message {result['id']}: {result['status']}"
          + (f" ({result['error']})" if result.get("error") else ""))
    return 0 if result["status"] != "failed" else 1


def cmd_sms_list(args: argparse.Namespace) -> int:
    """List stored SMS, newest first."""
    query = urllib.parse.urlencode({k: v for k, v in (("line", args.line),
                                                        ("limit", args.limit)) if v})
    code, items = _engine_call(args, "GET", "/sms" + (f"?{query}" if query else ""))
    if code:
        return code
    if args.json:
        print(json.dumps(items, indent=2, ensure_ascii=False))
        return 0
    if not items:
        print("no messages")
    for m in items:
        arrow = "<-" if m["direction"] == "in" else "->"
        flags = " [partial]" if m["partial"] else ""
        print(f"{m['id']:>5} {m['created_at'][:19]} {m['line'] or '-':<10} {arrow} "
              f"{m['peer']:<14} {m['status']:<9}{flags} {m['text']}")
    return 0


def cmd_ussd(args: argparse.Namespace) -> int:
    """Send a USSD code through a SIM line and print the answer."""
    key = urllib.parse.quote(args.line, safe="")
    code, result = _engine_call(args, "POST", f"/lines/{key}/ussd", {"code": args.code})
    if code:
        return code
    print(result["text"])
    if result.get("balance") is not None:
        print(f"balance: {result['balance']} {result.get('currency') or ''}".rstrip())
    return 0


def cmd_voicemail_list(args: argparse.Namespace) -> int:
    """List voicemail messages, newest first (read from the database)."""
    from .voicemail import list_messages

    with _open_db(args) as db:
        conn = db.read().conn
        if args.box and conn.execute("SELECT 1 FROM voicemail_boxes WHERE key = ?",
                                     (args.box,)).fetchone() is None:
            print(f"error: no voicemail box {args.box!r}", file=sys.stderr)
            return 1
        items = list_messages(conn, args.box, deleted=args.all)
    if args.json:
        print(json.dumps(items, indent=2, ensure_ascii=False))
        return 0
    if not items:
        print("no messages")
    for m in items:
        state = "deleted" if m["deleted_at"] else "read" if m["read"] else "NEW"
        length = f"{m['duration_s'] or 0:.0f} s"
        mailed = "e-mailed" if m["emailed_at"] else "-"
        print(f"{m['id']:>5} {m['created_at'][:19]} {m['box']:<12} {m['caller'] or '?':<14} "
              f"{length:>6} {state:<7} {mailed:<8} {m['path']}")
    return 0


def cmd_voicemail_pin(args: argparse.Namespace) -> int:
    """Set (or clear) the PIN for listening to a box from a phone."""
    from .voicemail import VoicemailError, set_pin

    pin: str | None = None
    if not args.clear:
        pin = _read_secret("PIN (4-12 digits)", "PINs")
        if pin is None:
            return 1
        pin = pin.strip()
    with _open_db(args) as db:
        try:
            db.write(lambda c: set_pin(c, args.box, pin))
        except (VoicemailError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(f"voicemail box {args.box}: PIN {'removed' if pin is None else 'set'}")
    return 0


def cmd_factory_reset(args: argparse.Namespace) -> int:
    """Back to the first-run wizard: through the running engine, else on the database."""
    from .control import ControlError, call
    from .factory_reset import factory_reset

    s = _settings(args)
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
        with _open_db(args) as db:
            report = factory_reset(db, s.data_dir, keep_recordings=keep,
                                   actor="cli").as_dict()
    print(f"factory reset done ({'through the engine' if running else 'engine not running'}):"
          f" {sum(report['rows'].values())} rows and {report['files']} files removed, "
          f"recordings {what.lower()}; open the web UI to run the first-run wizard")
    return 0


def cmd_remote_access_apply(args: argparse.Namespace) -> int:
    """As root (pbx-remote-access.service): carry out the web UI's SSH request, report."""
    from .remote_access import System, apply

    status = apply(_settings(args).data_dir, System())
    print(json.dumps(status))
    return 1 if status.get("error") else 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `pbx`."""
    p = argparse.ArgumentParser(prog="pbx", description="Office PBX appliance")
    p.add_argument("--config", help="settings file (TOML); default /etc/pbx/pbx.toml")
    p.add_argument("--data-dir", help="data directory (database, recordings)")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the engine (systemd unit pbx-engine)")
    run.add_argument("--engine-sip-port", type=int, help="engine's loopback SIP port")
    run.set_defaults(func=cmd_run)

    web = sub.add_parser("web", help="serve the web UI (systemd unit pbx-web)")
    web.add_argument("--bind", help="address to listen on")
    web.add_argument("--port", type=int, help="port to listen on")
    web.set_defaults(func=cmd_web)

    dev = sub.add_parser("dev", help="engine + web + simulated modems + demo data")
    dev.add_argument("--port", type=int, default=8080, help="web UI port")
    dev.add_argument("--fresh", action="store_true", help="start from an empty data dir")
    dev.set_defaults(func=cmd_dev)

    db = sub.add_parser("db", help="database maintenance").add_subparsers(
        dest="db_command", required=True)
    db.add_parser("migrate", help="create or upgrade the schema").set_defaults(
        func=cmd_db_migrate)

    admin = sub.add_parser("admin", help="web administrators").add_subparsers(
        dest="admin_command", required=True)
    create = admin.add_parser("create", help="create an administrator")
    create.add_argument("username")
    create.add_argument("--password-env", action="store_true",
                        help="take the password from $PBX_ADMIN_PASSWORD")
    create.set_defaults(func=cmd_admin_create)

    config = sub.add_parser("config", help="configuration as YAML").add_subparsers(
        dest="config_command", required=True)
    exp = config.add_parser("export", help="print the configuration")
    exp.add_argument("-o", "--output", help="write to this file instead")
    exp.set_defaults(func=cmd_config_export)
    imp = config.add_parser("import", help="validate and load a configuration file")
    imp.add_argument("file", help="YAML file, or - for standard input")
    imp.add_argument("--reload", action="store_true", help="reload the running engine")
    imp.set_defaults(func=cmd_config_import)

    ext = sub.add_parser("ext", help="extensions and their SIP phones").add_subparsers(
        dest="ext_command", required=True)
    ext_list = ext.add_parser("list", help="list the extensions")
    ext_list.add_argument("--json", action="store_true")
    ext_list.set_defaults(func=cmd_ext_list)
    ext_add = ext.add_parser("add", help="add an extension with one desk phone")
    ext_add.add_argument("extension", help="internal number, 2-6 digits")
    ext_add.add_argument("name", help="the employee's name")
    ext_add.add_argument("--username", help="SIP user name (default: the extension)")
    ext_add.add_argument("--role", choices=("user", "administrator"), default="user")
    ext_add.add_argument("--email")
    ext_add.add_argument("--auth", choices=("sha256", "md5"),
                         help="digest challenges (md5: for phones that fail on SHA-256)")
    ext_add.add_argument("--password-stdin", action="store_true",
                         help="read the SIP password from stdin (default: generate one)")
    ext_add.set_defaults(func=cmd_ext_add)
    ext_pw = ext.add_parser("passwd", help="new SIP password for a device")
    ext_pw.add_argument("username", help="the device's SIP user name")
    ext_pw.add_argument("--password-stdin", action="store_true",
                        help="read the SIP password from stdin (default: generate one)")
    ext_pw.set_defaults(func=cmd_ext_passwd)
    ext_rm = ext.add_parser("remove", help="remove an extension and its devices")
    ext_rm.add_argument("extension")
    ext_rm.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    ext_rm.set_defaults(func=cmd_ext_remove)

    sub.add_parser("reload", help="reload the running engine").set_defaults(func=cmd_reload)
    bans = sub.add_parser("bans", help="addresses the SIP edge has banned")
    bans.add_argument("--unban", metavar="HOST", help="lift the ban on this address")
    bans.set_defaults(func=cmd_bans)
    st = sub.add_parser("status", help="state of the running engine")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_status)
    lines = sub.add_parser("lines", help="SIM lines: state, signal, operator, balance")
    lines.add_argument("--json", action="store_true")
    lines.set_defaults(func=cmd_lines)
    sms = sub.add_parser("sms", help="text messages through the SIM lines").add_subparsers(
        dest="sms_cmd", required=True)
    sms_send = sms.add_parser("send", help="send an SMS")
    sms_send.add_argument("--line", required=True, help="the SIM line's key")
    sms_send.add_argument("to", help="the recipient's number")
    sms_send.add_argument("text")
    sms_send.set_defaults(func=cmd_sms_send)
    sms_list = sms.add_parser("list", help="stored messages, newest first")
    sms_list.add_argument("--line", help="only this line's messages")
    sms_list.add_argument("--limit", type=int, default=50)
    sms_list.add_argument("--json", action="store_true")
    sms_list.set_defaults(func=cmd_sms_list)
    ussd = sub.add_parser("ussd", help="send a USSD code (like *100#) through a SIM line")
    ussd.add_argument("line")
    ussd.add_argument("code")
    ussd.set_defaults(func=cmd_ussd)
    tr = sub.add_parser("trunks", help="SIP trunks and FXO gateways: registration, channels")
    tr.add_argument("--json", action="store_true")
    tr.set_defaults(func=cmd_trunks)
    tr_sub = tr.add_subparsers(dest="trunks_command")
    tr_test = tr_sub.add_parser("test", help="place a test call out through a line")
    tr_test.add_argument("line")
    tr_test.add_argument("number")
    tr_test.add_argument("--caller-id", help="the From user (default: the line's username)")
    tr_test.add_argument("--hold", type=int, default=2, help="seconds to hold once answered")
    tr_test.add_argument("--json", action="store_true")
    tr_test.set_defaults(func=cmd_trunks_test)
    vm = sub.add_parser("voicemail", help="voicemail messages and PINs").add_subparsers(
        dest="voicemail_command", required=True)
    vm_list = vm.add_parser("list", help="messages, newest first")
    vm_list.add_argument("box", nargs="?", help="only this box (its key)")
    vm_list.add_argument("--all", action="store_true", help="deleted messages too")
    vm_list.add_argument("--json", action="store_true")
    vm_list.set_defaults(func=cmd_voicemail_list)
    vm_pin = vm.add_parser("pin", help="set the PIN for listening from a phone (from stdin "
                                       "or asked)")
    vm_pin.add_argument("box")
    vm_pin.add_argument("--clear", action="store_true",
                        help="remove it (then only the owner's desk phone may listen)")
    vm_pin.set_defaults(func=cmd_voicemail_pin)
    pr = sub.add_parser("prompts", help="voice prompts: built-in and the admin's recordings"
                        ).add_subparsers(dest="prompts_command", required=True)
    pr_list = pr.add_parser("list", help="every prompt key, built-in files and recordings")
    pr_list.add_argument("--json", action="store_true")
    pr_list.set_defaults(func=cmd_prompts_list)
    pr_imp = pr.add_parser("import", help="convert a WAV or MP3 file into the prompt KEY")
    pr_imp.add_argument("key", help="e.g. welcome (replaces the built-in) or sales-menu")
    pr_imp.add_argument("file", help="WAV (PCM, any rate) or MP3, up to 20 MB and 10 minutes")
    pr_imp.add_argument("--language", choices=("ru", "en"),
                        help="the recording's language (default: played in any language)")
    pr_imp.add_argument("--name", help="a description shown in lists")
    pr_imp.set_defaults(func=cmd_prompts_import)
    doc = sub.add_parser("doctor", help="check pjsua2, limits, codecs, OpenSSL, database")
    doc.add_argument("--json", action="store_true")
    doc.set_defaults(func=cmd_doctor)
    fr = sub.add_parser("factory-reset", help="erase users, configuration and history: back to "
                                              "the first-run wizard")
    fr.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    keep = fr.add_mutually_exclusive_group()
    keep.add_argument("--wipe-recordings", dest="recordings", action="store_false",
                      default=None, help="delete call recordings and voicemail too")
    keep.add_argument("--keep-recordings", dest="recordings", action="store_true",
                      help="keep them (default: the factory_reset_keep_recordings setting)")
    fr.set_defaults(func=cmd_factory_reset)
    ra = sub.add_parser("remote-access", help="SSH as the web UI asked (root, on the image)")
    ra.add_subparsers(dest="ra_command", required=True).add_parser(
        "apply", help="turn SSH on or off as requested; write the status").set_defaults(
        func=cmd_remote_access_apply)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `pbx` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except SettingsError as exc:
        print(f"error: settings: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
