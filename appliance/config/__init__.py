"""The box's configuration: typed models (one validation layer) and YAML import/export."""

from .errors import ConfigError, Problem
from .model import BoxConfig, Destination

__all__ = ["BoxConfig", "ConfigError", "Destination", "Problem"]
