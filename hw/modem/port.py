"""Opening a modem's AT port (a USB tty, or a pty from the simulator) as an AtChannel."""

from __future__ import annotations

import asyncio

import serial_asyncio_fast

from .channel import AtChannel

DEFAULT_BAUDRATE = 115200


async def open_stream(
    path: str, *, baudrate: int = DEFAULT_BAUDRATE, exclusive: bool = True
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A reader/writer pair on a serial device or pty.

    exclusive takes an flock on the device, so a second process (ModemManager, a stray
    minicom) cannot interleave its own commands. No XON/XOFF: it would eat 0x11/0x13 bytes.
    """
    return await serial_asyncio_fast.open_serial_connection(
        url=path, baudrate=baudrate, exclusive=exclusive, xonxoff=False, rtscts=False)


async def open_channel(
    path: str, *, name: str | None = None, baudrate: int = DEFAULT_BAUDRATE,
    exclusive: bool = True, default_timeout: float = 5.0,
) -> AtChannel:
    """An AtChannel on path, its reader already running."""
    reader, writer = await open_stream(path, baudrate=baudrate, exclusive=exclusive)
    channel = AtChannel(reader, writer, name=name or path, default_timeout=default_timeout)
    channel.start()
    return channel
