"""The one seam for "now", so every timestamp is aware UTC and written the same way."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a ``Z``, the form every run field uses."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def ms(text: str) -> int:
    """An ISO 8601 time as milliseconds since the epoch (the scores of Redis time indexes)."""
    return int(parse_iso(text).timestamp() * 1000)


def now_ms() -> int:
    return int(time.time() * 1000)
