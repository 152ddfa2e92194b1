"""`pbx` commands for the office: extensions, lines and trunks, SMS, USSD, voicemail, prompts."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import urllib.parse
from pathlib import Path
from typing import Any

from ..settings import Settings
from .common import EXIT_USAGE, actor, engine_call, open_db, read_secret, reload_engine, settings_of


def cmd_trunks(args: argparse.Namespace) -> int:
    """Show the running engine's SIP trunks and FXO gateways."""
    code, trunks = engine_call(args, "GET", "/trunks")
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
    from ..control import ControlError, call

    s = settings_of(args)
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


def cmd_ext_list(args: argparse.Namespace) -> int:
    """List the extensions and their devices."""
    from ..extensions import list_extensions

    with open_db(args) as db:
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
    from ..config import ConfigError
    from ..extensions import add_extension

    password = _read_sip_password() if args.password_stdin else None
    if args.password_stdin and password is None:
        return 1
    s = settings_of(args)
    with open_db(args) as db:
        try:
            result = add_extension(db, args.extension, args.name, password=password,
                                   username=args.username, role=args.role, email=args.email,
                                   auth=args.auth, actor=actor())
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(f"extension {result.extension} ({result.name}) added")
    _phone_hint(s, result.username, result.realm, result.password)
    return reload_engine(s)


def cmd_ext_passwd(args: argparse.Namespace) -> int:
    """Give a device a new SIP password (generated unless --password-stdin)."""
    from ..config import ConfigError
    from ..extensions import set_password

    password = _read_sip_password() if args.password_stdin else None
    if args.password_stdin and password is None:
        return 1
    with open_db(args) as db:
        try:
            new = set_password(db, args.username, password, actor=actor())
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if password is None:
        print(f"new SIP password of {args.username}: {new}   (shown only now: write it down)")
    else:
        print(f"SIP password of {args.username} changed")
    print("the phone must be given the new password; the old one no longer works")
    return reload_engine(settings_of(args))


def cmd_ext_remove(args: argparse.Namespace) -> int:
    """Remove an extension and its devices (asks first unless --yes)."""
    from ..config import ConfigError
    from ..extensions import list_extensions, remove_extension

    with open_db(args) as db:
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
            result = remove_extension(db, args.extension, actor=actor())
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(f"extension {result.extension} ({result.name}) removed, with device(s) "
          f"{', '.join(result.usernames) or 'none'}; call history is kept")
    if result.left:
        print(f"also taken out of: {', '.join(result.left)}")
    return reload_engine(settings_of(args))


def cmd_prompts_list(args: argparse.Namespace) -> int:
    """List the prompt keys: built-in files and the admin's recordings."""
    from ..prompts import list_prompts

    s = settings_of(args)
    with open_db(args) as db:
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
    from ..prompts import PromptError, store_prompt
    from ..prompts.convert import MAX_BYTES

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
    s = settings_of(args)
    with open_db(args) as db:
        try:
            stored = store_prompt(db, s.data_dir, args.key, data, path.name,
                                  language=args.language, name=args.name or "", actor=actor())
        except PromptError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(f"prompt {stored.key}: {stored.duration_s:.1f} s, "
          f"{stored.language or 'any language'}, stored as {s.data_dir / stored.path}")
    return reload_engine(s)


def cmd_lines(args: argparse.Namespace) -> int:
    """List the lines with their state and health."""
    code, lines = engine_call(args, "GET", "/lines")
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
    code, result = engine_call(args, "POST", "/sms",
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
    code, items = engine_call(args, "GET", "/sms" + (f"?{query}" if query else ""))
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
    code, result = engine_call(args, "POST", f"/lines/{key}/ussd", {"code": args.code})
    if code:
        return code
    print(result["text"])
    if result.get("balance") is not None:
        print(f"balance: {result['balance']} {result.get('currency') or ''}".rstrip())
    return 0


def cmd_voicemail_list(args: argparse.Namespace) -> int:
    """List voicemail messages, newest first (read from the database)."""
    from ..voicemail import list_messages

    with open_db(args) as db:
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
    from ..voicemail import VoicemailError, set_pin

    pin: str | None = None
    if not args.clear:
        pin = read_secret("PIN (4-12 digits)", "PINs")
        if pin is None:
            return 1
        pin = pin.strip()
    with open_db(args) as db:
        try:
            db.write(lambda c: set_pin(c, args.box, pin))
        except (VoicemailError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(f"voicemail box {args.box}: PIN {'removed' if pin is None else 'set'}")
    return 0


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
