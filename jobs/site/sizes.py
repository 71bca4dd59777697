"""Sizes as people write them in netlify.toml: ``"512MB"``, ``"2GB"``, ``"1.5 GiB"`` or bytes.

Units are binary, as for Lambda's memory setting: ``1 MB`` is 1024 × 1024 bytes (``MiB`` says the same).
"""

from __future__ import annotations

import math
import re

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_size(value: object) -> int:
    """Return ``value`` in bytes; raise ``ValueError`` saying what is accepted."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size; use bytes or a string like '512MB' or '2GB'")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{value!r} is not a size; use a finite number of bytes or a string like '512MB'")
        return int(value)
    if isinstance(value, str):
        match = _PATTERN.match(value)
        if match:
            return int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    raise ValueError(f"{value!r} is not a size; use bytes or a string like '512MB', '2GB' (binary units)")


def format_size(size: float) -> str:
    """``512MB``, ``1.5GB``: the way sizes are written in netlify.toml (for messages and listings)."""
    for unit, scale in (("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.3g}{unit}"
    return f"{int(size)}B"
