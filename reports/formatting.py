"""Human formatting for report values, and safe names for exported files and sheets.

Every function here is pure and cheap: the HTML shows only a few dozen rows, so per-cell Python is
fine, and none of it touches a whole frame.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from datetime import date, datetime
from numbers import Integral, Real
from typing import Any

MISSING = "—"
"""Shown for None, NaN, NaT and pandas.NA, so gaps read as gaps rather than as ``nan``."""

Period = str | date | tuple[str | date, str | date]
"""A report's period: one label or day, or an inclusive (start, end) pair."""

CellFormat = str | Callable[[Any], str]
"""A format spec for :func:`format`, e.g. ``",.1%"``, or a callable returning the cell text."""

_SUFFIXES = ("", "K", "M", "B", "T")
_EXCEL_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
_EXCEL_MAX = 31


def is_missing(value: object) -> bool:
    """True for None, NaN, NaT and pandas.NA, without importing pandas."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    # NaT and pandas.NA are not equal to themselves; numpy floats are handled here too.
    try:
        return bool(value != value)
    except (TypeError, ValueError):  # pandas.NA raises on bool(); arrays are not scalars
        return type(value).__name__ in {"NAType", "NaTType"}


def _auto_decimals(value: float) -> int:
    return 0 if float(value).is_integer() else 2


def format_number(
    value: object,
    *,
    decimals: int | None = None,
    unit: str | None = None,
    thousands: bool = True,
    compact: bool = False,
) -> str:
    """Format a number with thousands separators and an optional unit.

    Args:
        decimals: digits after the point; by default 0 for whole numbers and 2 otherwise, and
            3 significant digits for tiny values so 0.00042 does not show as 0.00.
        unit: a currency symbol (``€``, ``$``) goes before the number, anything else after it
            (``%`` without a space, ``ms`` with one).
        thousands: False for values such as years and ids.
        compact: 60,029,126.87 -> ``60.0M`` (three significant digits with K, M, B or T) for
            headline numbers that must fit a card.

    Non-numbers are returned as ``str(value)``; missing values as :data:`MISSING`.
    """
    if is_missing(value):
        return MISSING
    if isinstance(value, bool) or not isinstance(value, Real):
        return str(value)
    sep = "," if thousands else ""
    if compact and abs(float(value)) >= 1000:
        text = _compact(float(value), decimals)
    elif isinstance(value, Integral) and decimals is None:
        text = f"{int(value):{sep}d}"
    else:
        number = float(value)
        if decimals is None and 0 < abs(number) < 0.01:
            text = f"{number:.3g}"
        else:
            text = f"{number:{sep}.{_auto_decimals(number) if decimals is None else decimals}f}"
    if not unit:
        return text
    if len(unit) == 1 and unicodedata.category(unit) == "Sc":
        return f"-{unit}{text[1:]}" if text.startswith("-") else f"{unit}{text}"
    return f"{text}{unit}" if unit == "%" else f"{text} {unit}"


def _compact(number: float, decimals: int | None) -> str:
    """Three significant digits with a suffix; called only for abs(number) >= 1000."""
    exponent = min(int(math.log10(abs(number))) // 3, len(_SUFFIXES) - 1)
    scaled = number / 1000**exponent
    digits = decimals if decimals is not None else max(0, 2 - int(math.log10(abs(scaled))))
    if round(abs(scaled), digits) >= 1000 and exponent < len(_SUFFIXES) - 1:  # 999,960 -> 1.00M, not 1,000K
        exponent, scaled = exponent + 1, scaled / 1000
        digits = decimals if decimals is not None else 2
    return f"{scaled:,.{digits}f}{_SUFFIXES[exponent]}"


def format_percent(fraction: object, *, decimals: int = 1, signed: bool = False) -> str:
    """Format a fraction as a percentage: 0.042 -> ``4.2%`` (``+4.2%`` when signed)."""
    if is_missing(fraction):
        return MISSING
    if not isinstance(fraction, Real):
        return str(fraction)
    return f"{float(fraction) * 100:{'+' if signed else ''},.{decimals}f}%"


def format_date(value: object) -> str:
    """ISO day for midnights, ``YYYY-MM-DD HH:MM`` otherwise: what a reader scans for."""
    if is_missing(value):
        return MISSING
    if isinstance(value, datetime):
        if (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0):
            return value.strftime("%Y-%m-%d")
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def format_period(period: Period | None) -> str | None:
    """Render a period as text; a (start, end) pair becomes ``start – end``."""
    if period is None:
        return None
    if isinstance(period, tuple):
        start, end = period
        return f"{format_date(start)} – {format_date(end)}"
    return format_date(period)


def format_cell(value: object, spec: CellFormat | None = None, *, thousands: bool = True) -> str:
    """Format one table cell: ``spec`` wins, then numbers, dates and plain text."""
    if is_missing(value):
        return MISSING
    if callable(spec):
        return spec(value)
    if spec is not None:
        try:
            return format(value, spec)
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, datetime | date):
        return format_date(value)
    return format_number(value, thousands=thousands)


def slugify(text: str, *, default: str = "table", max_length: int = 60) -> str:
    """A lowercase ASCII name safe in URLs, S3 keys and every file system: ``By région`` -> ``by-region``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_length].rstrip("-") or default


def unique_name(name: str, taken: set[str], *, max_length: int | None = None, fold: bool = False) -> str:
    """Return ``name``, or ``name-2``, ``name-3``... so it is not in ``taken``; then add it there.

    ``fold`` compares case-insensitively (Excel sheet names); ``max_length`` trims the stem so the
    suffix always fits.
    """
    key: Callable[[str], str] = str.casefold if fold else str
    candidate, n = name[:max_length] if max_length else name, 1
    while key(candidate) in taken:
        n += 1
        suffix = f"-{n}"
        stem = name[: max_length - len(suffix)] if max_length else name
        candidate = f"{stem}{suffix}"
    taken.add(key(candidate))
    return candidate


def sheet_name(title: str, taken: set[str]) -> str:
    """An Excel sheet name: no ``[]:*?/\\``, at most 31 characters, unique ignoring case."""
    cleaned = _EXCEL_FORBIDDEN.sub(" ", title).strip().strip("'") or "Sheet"
    if cleaned.casefold() == "history":  # reserved by Excel
        cleaned = "History data"
    return unique_name(cleaned, taken, max_length=_EXCEL_MAX, fold=True)


def plain_integer_column(name: object) -> bool:
    """Years and ids read wrong with separators (``2,026``), so integer columns named so skip them."""
    text = str(name).strip().lower()
    return text in {"year", "id"} or text.endswith(("_id", " id", "year"))
