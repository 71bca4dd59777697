"""What an exception raised in a handler says about retrying its run (``jobs.retry.steering``)."""

from __future__ import annotations

import pandas as pd
import pytest

from jobs.errors import ConfigError, DeliveryError, InvalidInput
from jobs.retry import NonRetriable, RetryAfter, steering
from reports import Report, ReportError, read_table


def test_a_handlers_own_steering():
    assert steering(NonRetriable("bad payload")) == {"retry": False}
    assert steering(RetryAfter(90, "rate limited")) == {"retry_after_s": 90.0}
    assert steering(RuntimeError("flaky")) == {}
    assert steering(RetryAfter("90s")) == {"retry_after_s": 90.0}  # durations as netlify.toml writes them
    assert RetryAfter("2m").seconds == 120.0 and RetryAfter("3d").seconds == 86_400.0  # at most a day
    with pytest.raises(ValueError, match="'soon' is not a duration; use seconds or a string like '90s'"):
        RetryAfter("soon")


def test_mistakes_in_a_call_or_its_configuration_are_not_retried_and_what_may_pass_is(tmp_path):
    assert steering(ConfigError("source 'api': environment variable TOKEN is not set")) == {"retry": False}
    assert steering(InvalidInput("artifact name '../x' leaves the run's folder")) == {"retry": False}
    assert steering(DeliveryError("S3 store did not answer")) == {}
    with pytest.raises(ReportError, match="not in frame") as chart:
        Report("Sales").chart("By day", pd.DataFrame({"day": [1, 2], "units": [3, 4]}), x="date")
    assert steering(chart.value) == {"retry": False}
    with pytest.raises(ReportError, match="no such file") as missing:
        read_table(tmp_path / "sales.csv")  # it may be written yet
    assert steering(missing.value) == {}
