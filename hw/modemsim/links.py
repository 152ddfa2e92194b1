"""By-IMEI symlinks to the simulated ports: the stand-in for the image's udev rule."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


class ByImeiLinks:
    """`<dir>/<IMEI>-if02` and `-if01` pointing at the current pts paths."""

    def __init__(self, directory: Path, imei: str, at_interface: str,
                 audio_interface: str) -> None:
        self.directory = directory
        self.imei = imei
        self.names = {"at": f"{imei}-{at_interface}", "audio": f"{imei}-{audio_interface}"}

    def path(self, port: str) -> Path:
        """The link for "at" or "audio"."""
        return self.directory / self.names[port]

    def update(self, at_path: str, audio_path: str) -> None:
        """Point the links at new pts paths, each replaced atomically (as udev does)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for port, target in (("at", at_path), ("audio", audio_path)):
            link = self.path(port)
            tmp = link.with_name(f".{link.name}.tmp")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            os.symlink(target, tmp)
            os.replace(tmp, link)

    def remove(self) -> None:
        """Remove the links: the device is gone."""
        for port in self.names:
            with contextlib.suppress(FileNotFoundError):
                self.path(port).unlink()
