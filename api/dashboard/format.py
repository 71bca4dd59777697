"""Jinja filters: times, durations, sizes and JSON the way people read them."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from markupsafe import Markup, escape

from jobs import clock

#: Where a long name may break onto the next line: after a separator, so the pieces stay readable.
_BREAK_AFTER = re.compile(r"(?<=[/._\-?&=;,+:])")

#: Characters of a result or payload shown on the page; the API has the rest.
JSON_PREVIEW_CHARS = 100_000


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s" if secs else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m" if minutes else f"{hours}h"
    return f"{hours // 24}d {hours % 24}h" if hours % 24 else f"{hours // 24}d"


def relative(iso: str | None, now: datetime | None = None) -> str:
    """``5 min ago`` / ``in 3 h``."""
    if not iso:
        return "–"
    delta = ((now or clock.now()) - clock.parse_iso(iso)).total_seconds()
    ahead, delta = delta < 0, abs(delta)
    if delta < 5:
        return "just now"
    if delta < 60:
        text = f"{delta:.0f} s"
    elif delta < 3600:
        text = f"{delta // 60:.0f} min"
    elif delta < 86400 * 2:
        text = f"{delta // 3600:.0f} h"
    else:
        text = f"{delta // 86400:.0f} d"
    return f"in {text}" if ahead else f"{text} ago"


def timestamp(iso: str | None) -> str:
    """``2026-03-01 14:05:09 UTC``."""
    if not iso:
        return "–"
    return clock.parse_iso(iso).strftime("%Y-%m-%d %H:%M:%S UTC")


def clock_time(epoch: float | None) -> str:
    """``14:05:09.123`` (UTC) from a log entry's ``t``."""
    if epoch is None:
        return ""
    return datetime.fromtimestamp(float(epoch), UTC).strftime("%H:%M:%S.%f")[:12]


def filesize(size: int | float | None) -> str:
    if size is None:
        return "–"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def pretty_json(value: Any) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    if len(text) > JSON_PREVIEW_CHARS:
        return text[:JSON_PREVIEW_CHARS] + f"\n… ({len(text) - JSON_PREVIEW_CHARS} more characters; see the API)"
    return text


def run_seconds(run: dict[str, Any], now: datetime | None = None) -> float | None:
    """From the first start to the end (or now, while active)."""
    if not run.get("started_at"):
        return None
    end = clock.parse_iso(run["finished_at"]) if run.get("finished_at") else (now or clock.now())
    return max(0.0, (end - clock.parse_iso(run["started_at"])).total_seconds())


def percent(progress: dict[str, Any] | None) -> float | None:
    """Progress as 0-100, or None when it has no total."""
    if not progress or progress.get("done") is None or not progress.get("total"):
        return None
    return max(0.0, min(100.0, 100.0 * float(progress["done"]) / float(progress["total"])))


def safe_url(url: str) -> str:
    """A URL without user info, query or fragment (where tokens hide), for display."""
    parts = urlsplit(url)
    if not parts.netloc:
        return url.split("?", 1)[0]
    netloc = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=netloc, query="", fragment="").geturl()


def breakable(text: object) -> Markup:
    """``text`` with line-break opportunities (``<wbr>``) after separators: long paths, content types, URLs
    and keys wrap at ``/``, ``.``, ``-`` and the like instead of spilling out of their box."""
    return Markup("<wbr>").join(escape(piece) for piece in _BREAK_AFTER.split(str(text)))


FILTERS = {
    "breakable": breakable,
    "duration": duration,
    "relative": relative,
    "timestamp": timestamp,
    "filesize": filesize,
    "pretty_json": pretty_json,
    "run_seconds": run_seconds,
    "percent": percent,
    "safe_url": safe_url,
    "clock_time": clock_time,
}
