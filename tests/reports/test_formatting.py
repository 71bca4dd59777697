"""Number, date and name formatting: what readers see and what file systems and Excel accept."""

from __future__ import annotations

import math
from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest

from reports.formatting import (
    MISSING,
    format_cell,
    format_date,
    format_number,
    format_percent,
    format_period,
    sheet_name,
    slugify,
    unique_name,
)


@pytest.mark.parametrize(
    ("value", "kwargs", "expected"),
    [
        (1234567, {}, "1,234,567"),
        (np.int64(-42000), {}, "-42,000"),
        (12345.6, {}, "12,345.60"),
        (12000.0, {}, "12,000"),
        (12345.6, {"unit": "€"}, "€12,345.60"),
        (-5.5, {"unit": "$"}, "-$5.50"),
        (250, {"unit": "ms"}, "250 ms"),
        (99.5, {"unit": "%"}, "99.50%"),
        (3.14159, {"decimals": 3}, "3.142"),
        (0.00042, {}, "0.00042"),
        (2026, {"thousands": False}, "2026"),
        ("n/a", {}, "n/a"),
        (True, {}, "True"),
        (60_029_126.87, {"compact": True, "unit": "€"}, "€60.0M"),
        (12_345, {"compact": True}, "12.3K"),
        (999_960, {"compact": True}, "1.00M"),
        (-2_500_000, {"compact": True, "decimals": 1}, "-2.5M"),
        (999.5, {"compact": True}, "999.50"),
    ],
)
def test_numbers_get_separators_decimals_and_units(value: object, kwargs: dict, expected: str) -> None:
    assert format_number(value, **kwargs) == expected


@pytest.mark.parametrize("missing", [None, math.nan, np.nan, pd.NA, pd.NaT])
def test_missing_values_show_as_a_dash_everywhere(missing: object) -> None:
    assert format_number(missing) == MISSING
    assert format_percent(missing) == MISSING
    assert format_cell(missing) == MISSING
    assert format_cell(missing, ",.2f") == MISSING


def test_percentages_are_fractions_and_can_be_signed() -> None:
    assert format_percent(0.042) == "4.2%"
    assert format_percent(0.042, signed=True) == "+4.2%"
    assert format_percent(-0.013, signed=True) == "-1.3%"
    assert format_percent(1.5, decimals=0) == "150%"


def test_dates_drop_midnight_and_periods_join_with_a_dash() -> None:
    assert format_date(datetime(2026, 11, 27)) == "2026-11-27"
    assert format_date(pd.Timestamp("2026-11-27 14:05:09")) == "2026-11-27 14:05"
    assert format_period(("2026-11-01", date(2026, 11, 30))) == "2026-11-01 – 2026-11-30"
    assert format_period("Q4 2026") == "Q4 2026"
    assert format_period(None) is None


def test_cells_use_a_spec_or_a_callable() -> None:
    assert format_cell(0.1234, ".1%") == "12.3%"
    assert format_cell(5, lambda v: f"<{v}>") == "<5>"
    assert format_cell("text", ",.2f") == "text"  # a spec that does not apply is not an error


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("By region", "by-region"),
        ("Ventes par région — Q4/2026", "ventes-par-region-q4-2026"),
        ("  ../../etc/passwd ", "etc-passwd"),
        ("日本", "table"),
        ("", "table"),
    ],
)
def test_slugs_are_safe_file_names(text: str, expected: str) -> None:
    assert slugify(text) == expected


def test_unique_names_get_numbered_suffixes_within_the_length_limit() -> None:
    taken: set[str] = set()
    assert [unique_name("a", taken) for _ in range(3)] == ["a", "a-2", "a-3"]
    taken = set()
    names = [unique_name("x" * 40, taken, max_length=31) for _ in range(2)]
    assert names[0] == "x" * 31
    assert names[1] == "x" * 29 + "-2"


def test_sheet_names_follow_excel_rules() -> None:
    taken: set[str] = set()
    names = [
        sheet_name("Revenue / cost [EUR]: by region?", taken),
        sheet_name("A very long table title that Excel would reject", taken),
        sheet_name("A very long table title that Excel would also reject", taken),
        sheet_name("summary", taken),
        sheet_name("SUMMARY", taken),
        sheet_name("History", taken),
        sheet_name("''", taken),
    ]
    assert all(len(n) <= 31 for n in names)
    assert not any(set(n) & set("[]:*?/\\") for n in names)
    assert len({n.casefold() for n in names}) == len(names)
    assert names[3:5] == ["summary", "SUMMARY-2"]
    assert names[5].casefold() != "history"
    assert names[6] == "Sheet"
