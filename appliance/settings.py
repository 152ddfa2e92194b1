"""Process settings: where the box keeps its data and what it binds to.

Settings are per process and per machine (paths, addresses, simulation);
the office's configuration (employees, lines, call flows) lives in the
database and travels as YAML.  Sources, later ones winning: built-in
defaults, a TOML file (``/etc/pbx/pbx.toml`` or ``$PBX_CONFIG``), then
``PBX_*`` environment variables.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from hw.gpio.boards import BOARDS

DEFAULT_FILE = Path("/etc/pbx/pbx.toml")
# Where an installed box keeps the built-in voice prompts (the image build copies the output
# of `make prompts` there); a source checkout uses its own share/prompts.
SYSTEM_PROMPTS_DIR = Path("/usr/share/pbx/prompts")


class SettingsError(ValueError):
    """Settings that cannot be used, with a message naming the setting."""


@dataclass(frozen=True)
class Settings:
    """Effective settings of one box process."""

    data_dir: Path = Path("/var/lib/pbx")
    # Sockets and pid files; empty means <data_dir>/run (systemd: /run/pbx).
    run_dir: Path | None = None
    # The SIP edge faces the office LAN; the engine listens on loopback only.
    sip_bind: str = "0.0.0.0"
    sip_port: int = 5060
    engine_sip_port: int = 5080
    rtp_port_min: int = 10000
    rtp_port_max: int = 20000
    # The engine's RTP (the audio of every call) must reach phones and providers, unlike its
    # SIP: it binds here (empty: the SIP edge's own address, so 0.0.0.0 on a box and
    # loopback in a test) and writes `rtp_address` into its SDP (empty: the address of the
    # interface on the default route; set it on a box behind NAT or with several networks).
    rtp_bind: str = ""
    rtp_address: str = ""
    web_bind: str = "0.0.0.0"
    web_port: int = 8080
    # HTTPS for the web UI: "auto" makes a certificate for this box at first start
    # (<data_dir>/tls), "files" uses web_cert/web_key (the admin's own), "off" serves plain
    # HTTP (development, tests). The image serves 443 and redirects web_http_port (80) to it.
    web_tls: str = "auto"
    web_cert: Path | None = None
    web_key: Path | None = None
    web_http_port: int = 0  # 0: no plain-HTTP redirect listener
    simulate: bool = False
    log_level: str = "INFO"
    # Conference bridge clock: 8 kHz unless wideband calls are bridged
    # (16 kHz costs ~4.5x CPU, see reference/pjsua2-notes.md).
    bridge_clock_rate: int = 8000
    max_calls: int = 512  # call legs (a bridged call is two)
    # The edge's front door: requests per source address per 2 s (0: no limit), failed
    # logins from one address within a minute before a ban, and the ban's length.
    sip_rate_limit: int = 32
    sip_ban_failures: int = 8
    sip_ban_seconds: int = 900
    # Where bans are also enforced by the kernel: "auto" uses nftables when nft is there and
    # permitted, "nftables" insists on it (the engine will not start without), "off" never.
    firewall: str = "auto"
    # OPTIONS keepalives from the edge to every registered phone, in seconds (0: none): they
    # keep NAT pinholes open and find phones that stopped answering (those are not rung).
    sip_keepalive_s: int = 30
    # pjsua2's own log (0-6) on the engine's stdout: 4 shows every bridge connection and
    # stream start, for chasing audio faults; 1 (errors) in normal use.
    pjsua_log_level: int = 1
    # Where udev names the modems' USB serial interfaces (AT and audio ports are found here).
    modem_dir: Path = Path("/dev/serial/by-path")
    # How often each SIM line's configured balance code (ussd_balance) is sent, in seconds.
    ussd_balance_interval_s: int = 21600
    # The built-in voice prompts (<dir>/<language>/<key>.wav); empty: see builtin_prompts_dir.
    prompts_dir: Path | None = None
    # The front panel (hw/gpio/boards.py): which pins are the LEDs, the button and the HAT
    # modem's power key; "none" on a PC. The pin driver follows GPIOZERO_PIN_FACTORY.
    board: str = "none"
    # A factory reset (button held 10 s, `pbx factory-reset`) keeps call recordings and
    # voicemail unless this is false.
    factory_reset_keep_recordings: bool = True
    # The vendor keys an update uploaded in the web UI must be signed with (System > Update).
    update_keyring: Path = Path("/usr/share/keyrings/office-pbx.gpg")
    source: tuple[str, ...] = field(default=(), compare=False)

    @property
    def db_path(self) -> Path:
        """The SQLite database file."""
        return self.data_dir / "pbx.sqlite3"

    @property
    def control_socket(self) -> Path:
        """The engine's control API (HTTP/JSON over a Unix socket)."""
        return (self.run_dir or self.data_dir / "run") / "control.sock"

    @property
    def recordings_dir(self) -> Path:
        """Where call recordings are written."""
        return self.data_dir / "recordings"

    @property
    def voicemail_dir(self) -> Path:
        """Where voicemail messages are written."""
        return self.data_dir / "voicemail"

    @property
    def builtin_prompts_dir(self) -> Path:
        """Built-in prompts: prompts_dir, else the checkout's share/prompts, else the system's."""
        if self.prompts_dir is not None:
            return self.prompts_dir
        root = Path(__file__).resolve().parent.parent
        # An editable install (make venv) runs from the checkout, where `make prompts` writes.
        if (root / "pyproject.toml").is_file():
            return root / "share" / "prompts"
        return SYSTEM_PROMPTS_DIR

    def validate(self) -> Settings:
        """Raise SettingsError for values that cannot work; return self."""
        for name in ("sip_port", "engine_sip_port", "web_port", "web_http_port", "rtp_port_min",
                     "rtp_port_max"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise SettingsError(f"{name}: {port} is not a port number (0-65535)")
        if self.rtp_port_min >= self.rtp_port_max:
            raise SettingsError("rtp_port_min must be below rtp_port_max")
        for name in ("sip_bind", "web_bind", "rtp_bind", "rtp_address"):
            value = getattr(self, name)
            if not value and name.startswith("rtp_"):
                continue
            try:
                ipaddress.ip_address(value)
            except ValueError as exc:
                raise SettingsError(f"{name}: {exc}") from None
        if self.web_tls not in ("auto", "files", "off"):
            raise SettingsError(f"web_tls must be auto, files or off: {self.web_tls!r}")
        if self.web_tls == "files" and (self.web_cert is None or self.web_key is None):
            raise SettingsError("web_tls = files needs web_cert and web_key")
        if self.bridge_clock_rate not in (8000, 16000, 32000, 48000):
            raise SettingsError("bridge_clock_rate must be 8000, 16000, 32000 or 48000")
        if not 1 <= self.max_calls <= 1024:
            raise SettingsError("max_calls must be 1-1024 (our pjsua2 build holds 1024 legs)")
        if self.sip_rate_limit < 0 or self.sip_ban_failures < 1 or self.sip_ban_seconds < 0:
            raise SettingsError("sip_rate_limit >= 0, sip_ban_failures >= 1, sip_ban_seconds >= 0")
        if self.firewall not in ("auto", "nftables", "off"):
            raise SettingsError(f"firewall must be auto, nftables or off: {self.firewall!r}")
        if self.sip_keepalive_s < 0:
            raise SettingsError("sip_keepalive_s must be >= 0 (0: no keepalives)")
        if self.ussd_balance_interval_s < 60:
            raise SettingsError("ussd_balance_interval_s must be at least 60 (seconds)")
        if not 0 <= self.pjsua_log_level <= 6:
            raise SettingsError("pjsua_log_level must be 0-6")
        if self.board not in BOARDS:
            raise SettingsError(f"board must be one of {', '.join(sorted(BOARDS))}: "
                                f"{self.board!r}")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise SettingsError("log_level must be DEBUG, INFO, WARNING or ERROR")
        return self


def _coerce(name: str, kind: Any, raw: Any) -> Any:
    """Turn a TOML or environment value into the field's type."""
    try:
        if kind in (bool, "bool"):
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(f"not a boolean: {raw!r}")
        if kind in (int, "int"):
            if isinstance(raw, bool):
                raise ValueError("a boolean is not a number")
            return int(raw)
        if kind in (Path, "Path", "Path | None"):
            return Path(str(raw)).expanduser()
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"{name}: {exc}") from None


def load(
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Load settings from defaults, the TOML file, PBX_* variables and overrides."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: list[str] = ["defaults"]
    types = {f.name: f.type for f in fields(Settings) if f.name != "source"}

    file = path or (Path(env["PBX_CONFIG"]) if env.get("PBX_CONFIG") else None)
    if file is None and DEFAULT_FILE.exists():
        file = DEFAULT_FILE
    if file is not None:
        try:
            doc = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SettingsError(f"settings file {file} does not exist") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"settings file {file}: {exc}") from None
        for key, raw in doc.items():
            if key not in types:
                raise SettingsError(f"settings file {file}: unknown setting {key!r}")
            values[key] = _coerce(key, types[key], raw)
        sources.append(str(file))

    for key, kind in types.items():
        env_key = "PBX_" + key.upper()
        if env_key in env:
            values[key] = _coerce(env_key, kind, env[env_key])
            sources.append(env_key)

    for key, raw in overrides.items():
        if key not in types:
            raise SettingsError(f"unknown setting {key!r}")
        if raw is not None:
            values[key] = _coerce(key, types[key], raw)

    return replace(Settings(), **values, source=tuple(sources)).validate()
