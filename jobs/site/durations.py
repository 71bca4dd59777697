"""Durations as people write them in netlify.toml: ``"90s"``, ``"15m"``, ``"1h"``, ``"30d"`` or seconds."""

from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


def parse_duration(value: object) -> float:
    """Return ``value`` in seconds; raise ``ValueError`` saying what is accepted."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; use seconds or a string like '90s', '15m', '1h'")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a duration; a duration must be a finite number of seconds")
        if value < 0:
            raise ValueError(f"{value!r} is negative; a duration must be 0 or more")
        return float(value)
    if isinstance(value, str):
        match = PATTERN.match(value)
        if match:
            seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
            if math.isfinite(seconds):
                return seconds
    raise ValueError(f"{value!r} is not a duration; use seconds or a string like '90s', '15m', '1h', '30d'")
