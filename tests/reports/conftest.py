"""Fixtures for the reports library: small, known frames and a report with a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from reports import Report

GENERATED_AT = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)


@pytest.fixture
def sales() -> pd.DataFrame:
    """Daily revenue over three months, with a region, a missing value and an awkward string."""
    days = pd.date_range("2026-01-01", periods=90, freq="D")
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "day": days,
            "region": np.resize(["North", "South", "East", "West <b>"], len(days)),
            "revenue": rng.normal(20_000, 4_000, len(days)).round(2),
            "orders": rng.integers(100, 900, len(days)),
        }
    )
    frame.loc[3, "revenue"] = np.nan
    return frame


@pytest.fixture
def report() -> Report:
    return Report("Daily sales", period="2026-11-27", generated_at=GENERATED_AT)


def page(report: Report) -> str:
    """The report's HTML page, rendered as a job renders it (``render``/``write``)."""
    return report.render("html")["report.html"].decode("utf-8")
