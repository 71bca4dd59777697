"""The Schedules page in a real browser: its New schedule form creates a schedule (CSRF, form post, redirect),
and with the form open the page fits a desktop and a phone (nothing spills out of a card, no sideways scroll)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import api, running_stack
from .test_dashboard import log_in
from .test_run_layout import LONG, OVERFLOW, WIDTHS

FUNCTIONS = {
    LONG: "def handler(event, context):\n    return {'ok': True}\n",
    "echo-background": "def handler(event, context):\n    return event['body']\n",
}
TOML = f"""
[functions]
  directory = "netlify/functions"

[functions."{LONG}"]
  schedule = "0 6 * * 1-5"
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_server: Any) -> Iterator[dict[str, Any]]:
    with running_stack(tmp_path_factory.mktemp("schedules"), redis_server.url, FUNCTIONS, TOML) as running:
        yield running


def test_new_schedule_form_creates_a_schedule_and_fits_a_phone(page, stack, tmp_path: Path):
    log_in(page, "/schedules")
    for label, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.goto("/schedules")
        page.click("summary:has-text('New schedule')")
        found = page.evaluate(OVERFLOW)
        page.screenshot(path=str(tmp_path / f"schedules-{label}.png"), full_page=True)
        assert found["spilled"] == [], f"at {width} px: {found['spilled']}"
        assert found["sideways"] <= 0, f"at {width} px the page scrolls {found['sideways']} px sideways"

    page.fill("#new-name", "echo-tokyo")
    page.select_option("#new-function", "echo-background")
    page.fill("#new-cron", "30 5 * * *")
    page.fill("#new-timezone", "Asia/Tokyo")
    page.fill("#new-payload", '{"region": "ap"}')
    page.click("form[action='/schedules'] button[type=submit]")
    page.wait_for_url("**/schedules?notice=created#echo-tokyo")
    assert page.locator("#echo-tokyo .pill-api").count() == 1
    made = api(stack, "GET", "/api/schedules/echo-tokyo").json()
    assert (made["function"], made["schedule"], made["timezone"], made["payload"]) == (
        "echo-background",
        "30 5 * * *",
        "Asia/Tokyo",
        {"region": "ap"},
    )
