"""Time zones a schedule may name: IANA places, read alike by every host (apart from croniter, so that a site
loads without it)."""

from __future__ import annotations

from datetime import UTC, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import clipped

#: Names the tz database holds that are not a place's zone: the host's own zone (each host would fire at its own
#: time), a placeholder and the default rules; and the trees that repeat every zone, one of them with leap
#: seconds (its clock runs 27 s apart from UTC).
_NOT_PLACES = frozenset({"localtime", "factory", "posixrules"})
_NOT_PLACE_TREES = ("posix/", "right/")
_USE = 'use an IANA name such as "UTC", "Europe/Berlin" or "America/New_York"'


def zone(name: str, *, strict: bool = False) -> tzinfo:
    """The time zone ``name`` names, or ValueError saying why. ``strict`` for configuration being written (a site,
    a schedule created through the API): it also refuses names that are not a place, which hosts read
    differently. Schedules stored before that rule keep working as they did."""
    if name == "UTC":
        return UTC  # needs no tz database, and maps local time to UTC trivially
    folded = name.lower() if isinstance(name, str) else ""  # case-insensitive file systems find "LocalTime" too
    if strict and (folded in _NOT_PLACES or folded.startswith(_NOT_PLACE_TREES)):
        raise ValueError(f'time zone "{name}" is not a place\'s zone, and hosts may read it differently; {_USE}')
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        shown = f'"{clipped(name)}"' if isinstance(name, str) else repr(name)
        raise ValueError(f"unknown time zone {shown}; {_USE}") from None
