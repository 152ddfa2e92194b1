"""The `pbx` command: run the engine or the web UI, and administer the box.

`system` holds the commands about the box itself, `office` those about the office's people,
lines and prompts, `common` what they share; this module builds the parser.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..settings import SettingsError
from . import office, system
from .common import EXIT_USAGE

__all__ = ["EXIT_USAGE", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `pbx`."""
    p = argparse.ArgumentParser(prog="pbx", description="Office PBX appliance")
    p.add_argument("--config", help="settings file (TOML); default /etc/pbx/pbx.toml")
    p.add_argument("--data-dir", help="data directory (database, recordings)")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the engine (systemd unit pbx-engine)")
    run.add_argument("--engine-sip-port", type=int, help="engine's loopback SIP port")
    run.set_defaults(func=system.cmd_run)

    web = sub.add_parser("web", help="serve the web UI (systemd unit pbx-web)")
    web.add_argument("--bind", help="address to listen on")
    web.add_argument("--port", type=int, help="port to listen on")
    web.set_defaults(func=system.cmd_web)

    dev = sub.add_parser("dev", help="engine + web + simulated modems + demo data")
    dev.add_argument("--port", type=int, default=8080, help="web UI port")
    dev.add_argument("--fresh", action="store_true", help="start from an empty data dir")
    dev.set_defaults(func=system.cmd_dev)

    db = sub.add_parser("db", help="database maintenance").add_subparsers(
        dest="db_command", required=True)
    db.add_parser("migrate", help="create or upgrade the schema").set_defaults(
        func=system.cmd_db_migrate)

    admin = sub.add_parser("admin", help="web administrators").add_subparsers(
        dest="admin_command", required=True)
    create = admin.add_parser("create", help="create an administrator")
    create.add_argument("username")
    create.add_argument("--password-env", action="store_true",
                        help="take the password from $PBX_ADMIN_PASSWORD")
    create.set_defaults(func=system.cmd_admin_create)

    config = sub.add_parser("config", help="configuration as YAML").add_subparsers(
        dest="config_command", required=True)
    exp = config.add_parser("export", help="print the configuration")
    exp.add_argument("-o", "--output", help="write to this file instead")
    exp.set_defaults(func=system.cmd_config_export)
    imp = config.add_parser("import", help="validate and load a configuration file")
    imp.add_argument("file", help="YAML file, or - for standard input")
    imp.add_argument("--reload", action="store_true", help="reload the running engine")
    imp.set_defaults(func=system.cmd_config_import)

    ext = sub.add_parser("ext", help="extensions and their SIP phones").add_subparsers(
        dest="ext_command", required=True)
    ext_list = ext.add_parser("list", help="list the extensions")
    ext_list.add_argument("--json", action="store_true")
    ext_list.set_defaults(func=office.cmd_ext_list)
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
    ext_add.set_defaults(func=office.cmd_ext_add)
    ext_pw = ext.add_parser("passwd", help="new SIP password for a device")
    ext_pw.add_argument("username", help="the device's SIP user name")
    ext_pw.add_argument("--password-stdin", action="store_true",
                        help="read the SIP password from stdin (default: generate one)")
    ext_pw.set_defaults(func=office.cmd_ext_passwd)
    ext_rm = ext.add_parser("remove", help="remove an extension and its devices")
    ext_rm.add_argument("extension")
    ext_rm.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    ext_rm.set_defaults(func=office.cmd_ext_remove)

    sub.add_parser("reload", help="reload the running engine").set_defaults(func=system.cmd_reload)
    bans = sub.add_parser("bans", help="addresses the SIP edge has banned")
    bans.add_argument("--unban", metavar="HOST", help="lift the ban on this address")
    bans.set_defaults(func=system.cmd_bans)
    st = sub.add_parser("status", help="state of the running engine")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=system.cmd_status)
    lines = sub.add_parser("lines", help="SIM lines: state, signal, operator, balance")
    lines.add_argument("--json", action="store_true")
    lines.set_defaults(func=office.cmd_lines)
    sms = sub.add_parser("sms", help="text messages through the SIM lines").add_subparsers(
        dest="sms_cmd", required=True)
    sms_send = sms.add_parser("send", help="send an SMS")
    sms_send.add_argument("--line", required=True, help="the SIM line's key")
    sms_send.add_argument("to", help="the recipient's number")
    sms_send.add_argument("text")
    sms_send.set_defaults(func=office.cmd_sms_send)
    sms_list = sms.add_parser("list", help="stored messages, newest first")
    sms_list.add_argument("--line", help="only this line's messages")
    sms_list.add_argument("--limit", type=int, default=50)
    sms_list.add_argument("--json", action="store_true")
    sms_list.set_defaults(func=office.cmd_sms_list)
    ussd = sub.add_parser("ussd", help="send a USSD code (like *100#) through a SIM line")
    ussd.add_argument("line")
    ussd.add_argument("code")
    ussd.set_defaults(func=office.cmd_ussd)
    tr = sub.add_parser("trunks", help="SIP trunks and FXO gateways: registration, channels")
    tr.add_argument("--json", action="store_true")
    tr.set_defaults(func=office.cmd_trunks)
    tr_sub = tr.add_subparsers(dest="trunks_command")
    tr_test = tr_sub.add_parser("test", help="place a test call out through a line")
    tr_test.add_argument("line")
    tr_test.add_argument("number")
    tr_test.add_argument("--caller-id", help="the From user (default: the line's username)")
    tr_test.add_argument("--hold", type=int, default=2, help="seconds to hold once answered")
    tr_test.add_argument("--json", action="store_true")
    tr_test.set_defaults(func=office.cmd_trunks_test)
    vm = sub.add_parser("voicemail", help="voicemail messages and PINs").add_subparsers(
        dest="voicemail_command", required=True)
    vm_list = vm.add_parser("list", help="messages, newest first")
    vm_list.add_argument("box", nargs="?", help="only this box (its key)")
    vm_list.add_argument("--all", action="store_true", help="deleted messages too")
    vm_list.add_argument("--json", action="store_true")
    vm_list.set_defaults(func=office.cmd_voicemail_list)
    vm_pin = vm.add_parser("pin", help="set the PIN for listening from a phone (from stdin "
                                       "or asked)")
    vm_pin.add_argument("box")
    vm_pin.add_argument("--clear", action="store_true",
                        help="remove it (then only the owner's desk phone may listen)")
    vm_pin.set_defaults(func=office.cmd_voicemail_pin)
    pr = sub.add_parser("prompts", help="voice prompts: built-in and the admin's recordings"
                        ).add_subparsers(dest="prompts_command", required=True)
    pr_list = pr.add_parser("list", help="every prompt key, built-in files and recordings")
    pr_list.add_argument("--json", action="store_true")
    pr_list.set_defaults(func=office.cmd_prompts_list)
    pr_imp = pr.add_parser("import", help="convert a WAV or MP3 file into the prompt KEY")
    pr_imp.add_argument("key", help="e.g. welcome (replaces the built-in) or sales-menu")
    pr_imp.add_argument("file", help="WAV (PCM, any rate) or MP3, up to 20 MB and 10 minutes")
    pr_imp.add_argument("--language", choices=("ru", "en"),
                        help="the recording's language (default: played in any language)")
    pr_imp.add_argument("--name", help="a description shown in lists")
    pr_imp.set_defaults(func=office.cmd_prompts_import)
    doc = sub.add_parser("doctor", help="check pjsua2, limits, codecs, OpenSSL, database")
    doc.add_argument("--json", action="store_true")
    doc.set_defaults(func=system.cmd_doctor)
    fr = sub.add_parser("factory-reset", help="erase users, configuration and history: back to "
                                              "the first-run wizard")
    fr.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    keep = fr.add_mutually_exclusive_group()
    keep.add_argument("--wipe-recordings", dest="recordings", action="store_false",
                      default=None, help="delete call recordings and voicemail too")
    keep.add_argument("--keep-recordings", dest="recordings", action="store_true",
                      help="keep them (default: the factory_reset_keep_recordings setting)")
    fr.set_defaults(func=system.cmd_factory_reset)
    ra = sub.add_parser("remote-access", help="SSH as the web UI asked (root, on the image)")
    ra.add_subparsers(dest="ra_command", required=True).add_parser(
        "apply", help="turn SSH on or off as requested; write the status").set_defaults(
        func=system.cmd_remote_access_apply)
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
