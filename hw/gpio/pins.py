"""The gpiozero pin factory, made explicitly for the box (never gpiozero's global one).

Chosen by environment as gpiozero itself does: GPIOZERO_PIN_FACTORY names one of gpiozero's
factories ("mock" in tests, "lgpio", "rpigpio", "pigpio", "native"); unset, lgpio is tried
(every Pi, the Pi 5 included, with PWM), then gpiozero's pure-Python "native" (Pi 3/4).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

log = logging.getLogger(__name__)

ENV = "GPIOZERO_PIN_FACTORY"
DEFAULT_ORDER = ("lgpio", "native")


class PinFactoryError(RuntimeError):
    """No pin factory could be made (no GPIO chip, a missing library, an unknown name)."""


def _load(name: str) -> Any:
    """gpiozero's factory class registered under name (case-insensitive)."""
    group = entry_points(group="gpiozero_pin_factories")
    for wanted in (name, name.lower()):
        for ep in group:
            if ep.name == wanted:
                return ep.load()
    known = ", ".join(sorted({ep.name.lower() for ep in group}))
    raise PinFactoryError(f"{ENV}={name!r} is no gpiozero pin factory (known: {known})")


def make_pin_factory(environ: Mapping[str, str]) -> Any:
    """A new pin factory chosen by environ[GPIOZERO_PIN_FACTORY], else the default order."""
    name = environ.get(ENV, "").strip()
    names = (name,) if name else DEFAULT_ORDER
    problems = []
    for candidate in names:
        try:
            return _load(candidate)()
        except PinFactoryError:
            raise
        except Exception as exc:  # a missing library or GPIO chip: try the next one
            problems.append(f"{candidate}: {exc}")
    raise PinFactoryError("no GPIO pin factory works here (" + "; ".join(problems) + ")")
