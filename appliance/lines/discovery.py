"""Finding modems: USB path and interface from a link directory, then the IMEI after opening.

udev names every USB serial interface under /dev/serial/by-path (`...-usb-0:1.3:1.2-port0`:
hub port 1.3, interface 2). We group the links by device, open only the AT interface (never
the audio one: a stray AT on the PCM port is noise in a call), identify the modem
(+CGSN, +CGMI, +CGMM) and hand the open channel to the line it belongs to: by IMEI, else by
USB path, else the first free simulated line. The simulator's by-IMEI links
(`<IMEI>-if02`) are read the same way. Polling (not inotify) finds hot-plugged and vanished
modems; a modem re-enumerated after a reset shows up with new targets.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hw.modem.channel import ModemLink
from hw.modem.commands import AtError
from hw.modem.profiles import Family, ModemProfile, identify

log = logging.getLogger(__name__)

AT_INTERFACES = (2,)
# Where the PCM audio port is, per family (the simulator puts SIMCom's on if1).
AUDIO_INTERFACES: dict[Family, tuple[int, ...]] = {
    Family.HUAWEI: (1,), Family.QUECTEL: (1,), Family.SIMCOM: (4, 1),
}
_BY_PATH = re.compile(r"^(?P<dev>.+?):1\.(?P<iface>\d{1,2})(?:-port\d{1,3})?$")
_BY_IF = re.compile(r"^(?P<dev>.+?)-if(?P<iface>\d{1,2})(?:-port\d{1,3})?$")
IMEI = re.compile(r"\b(\d{15})\b")


@dataclass(frozen=True)
class LinkName:
    """A link name split into its device and its USB interface number."""

    device: str
    interface: int


def parse_link_name(name: str) -> LinkName | None:
    """`pci-...-usb-0:1.3:1.2-port0` -> (`pci-...-usb-0:1.3`, 2); `<IMEI>-if02` too. Pure."""
    if not name or len(name) > 255 or name.startswith(".") or "/" in name:
        return None
    for pattern in (_BY_PATH, _BY_IF):
        match = pattern.match(name)
        if match:
            return LinkName(match["dev"], int(match["iface"]))
    return None


def parse_imei(text: str) -> str | None:
    """The IMEI in an AT+CGSN answer ('+CGSN: 86...' or the bare digits). Pure."""
    match = IMEI.search(text)
    return match.group(1) if match else None


@dataclass(frozen=True)
class DeviceLinks:
    """One USB device as the link directory shows it: interface -> (link, target)."""

    device: str
    directory: Path
    interfaces: dict[int, tuple[str, str]] = field(default_factory=dict)

    def signature(self) -> tuple[tuple[int, str], ...]:
        """What changes when the device re-enumerates (new tty targets)."""
        return tuple(sorted((i, t) for i, (_, t) in self.interfaces.items()))

    def port(self, candidates: Iterable[int]) -> tuple[int, str, str] | None:
        """The first of candidates present: (interface, link path, target path)."""
        for iface in candidates:
            if iface in self.interfaces:
                link, target = self.interfaces[iface]
                return iface, link, target
        return None


def scan(directories: Sequence[Path]) -> dict[str, DeviceLinks]:
    """Every device with a link in directories (dangling links are skipped)."""
    found: dict[str, DeviceLinks] = {}
    for directory in directories:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            parsed = parse_link_name(name)
            if parsed is None:
                continue
            link = directory / name
            try:
                target = os.path.realpath(link, strict=True)
            except OSError:
                continue
            key = f"{directory}/{parsed.device}"
            dev = found.setdefault(key, DeviceLinks(key, directory))
            dev.interfaces[parsed.interface] = (str(link), target)
    return found


@dataclass
class ModemPort:
    """An opened, identified modem, ready for its line."""

    device: str
    usb_path: str  # the AT link's name, e.g. pci-...-usb-0:1.3:1.2-port0
    at_path: str
    audio_path: str | None
    imei: str
    profile: ModemProfile
    channel: ModemLink
    manufacturer: str = ""
    model: str = ""
    signature: tuple[tuple[int, str], ...] = ()


Opener = Callable[[str], Awaitable[ModemLink]]


class ProbeError(Exception):
    """The device did not answer as a modem we drive."""


async def probe(dev: DeviceLinks, opener: Opener, *,
                at_interfaces: Sequence[int] = AT_INTERFACES,
                timeout: float = 3.0) -> ModemPort:
    """Open the AT interface, switch echo off, read IMEI and model; ProbeError if not a modem."""
    at = dev.port(at_interfaces)
    if at is None:
        raise ProbeError(f"{dev.device}: no AT interface among {list(at_interfaces)}")
    _, link, target = at
    channel = await opener(target)
    try:
        await channel.command("ATE0", timeout)
        imei = parse_imei(" ".join((await channel.command("AT+CGSN", timeout))
                                   .expect_ok().lines))
        if imei is None:
            raise ProbeError(f"{link}: no IMEI in the answer to AT+CGSN")
        maker = (await channel.command("AT+CGMI", timeout)).expect_ok().text()
        model = (await channel.command("AT+CGMM", timeout)).expect_ok().text()
        ident = identify(maker, model)
        if ident is None:
            raise ProbeError(f"{link}: {maker!r} {model!r} is not a modem family we drive")
    except (AtError, ProbeError) as exc:
        with contextlib.suppress(Exception):
            await channel.close()
        raise ProbeError(str(exc)) from exc
    except BaseException:
        with contextlib.suppress(Exception):
            await channel.close()
        raise
    audio = dev.port(AUDIO_INTERFACES[ident.profile.family])
    return ModemPort(dev.device, Path(link).name, target, audio[2] if audio else None, imei,
                     ident.profile, channel, maker.strip(), model.strip(), dev.signature())


@dataclass(frozen=True)
class LineWish:
    """What discovery needs to know about a configured SIM line to match a modem to it."""

    key: str
    imei: str | None
    usb_path: str | None
    simulated: bool


def usb_matches(usb_path: str, port: ModemPort) -> bool:
    """True when a configured usb_path names this port's device, AT link or tty."""
    want = usb_path.rstrip("/")
    device_name = port.device.rsplit("/", 1)[-1]
    return want in (port.usb_path, port.at_path, port.device, device_name) or (
        want.rsplit("/", 1)[-1] in (port.usb_path, device_name))


def match_line(port: ModemPort, wishes: Sequence[LineWish], taken: set[str]) -> str | None:
    """The line a modem belongs to: by IMEI, else by USB path, else the first free simulated
    line (one without an IMEI of its own). Pure."""
    free = [w for w in wishes if w.key not in taken]
    for wish in free:
        if wish.imei and wish.imei == port.imei:
            return wish.key
    for wish in free:
        if not wish.imei and wish.usb_path and usb_matches(wish.usb_path, port):
            return wish.key
    for wish in free:
        if wish.simulated and not wish.imei and not wish.usb_path:
            return wish.key
    return None


class Discovery:
    """Polls the link directories and reports devices that appeared, changed or vanished."""

    def __init__(self, directories: Sequence[Path]) -> None:
        self.directories = tuple(directories)
        self.known: dict[str, DeviceLinks] = {}

    def poll(self) -> tuple[list[DeviceLinks], list[str]]:
        """(new or re-enumerated devices, device keys gone or re-enumerated)."""
        now = scan(self.directories)
        appeared: list[DeviceLinks] = []
        vanished: list[str] = []
        for key, old in self.known.items():
            new = now.get(key)
            if new is None or new.signature() != old.signature():
                vanished.append(key)
        for key, dev in now.items():
            before = self.known.get(key)
            if before is None or before.signature() != dev.signature():
                appeared.append(dev)
        self.known = now
        return appeared, vanished

    def forget(self, device: str) -> None:
        """Treat device as new at the next poll (probe it again)."""
        self.known.pop(device, None)


async def sysfs_usb_reset(port: ModemPort) -> bool:
    """Power-cycle the modem's USB device through sysfs `authorized` (needs root). I/O."""
    tty = Path(port.at_path).name
    device = Path(f"/sys/class/tty/{tty}/device")
    try:
        # tty -> USB interface -> USB device (the one with `authorized`).
        usb_device = device.resolve().parent.parent
        flag = usb_device / "authorized"
        if not flag.exists():
            usb_device = usb_device.parent
            flag = usb_device / "authorized"
        flag.write_text("0")
        flag.write_text("1")
    except OSError as exc:
        log.warning("%s: USB reset through sysfs failed: %s", port.usb_path, exc)
        return False
    return True
