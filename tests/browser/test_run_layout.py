"""The run page with long names everywhere (function, artifacts, content types, webhook URLs, an idempotency key,
unbroken log and error text), at a desktop width and a phone width: nothing spills out of its card and the page
never scrolls sideways. Screenshots go to a temporary folder, or to ``BACKBURNER_LAYOUT_SCREENSHOTS`` to look at:

    BACKBURNER_LAYOUT_SCREENSHOTS=/tmp/shots .venv/bin/pytest tests/browser/test_run_layout.py
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobs.delivery.webhooks import generate_secret
from tests.support.procs import wait_for

from .conftest import TOKEN, api, running_stack
from .test_dashboard import log_in

LONG = "customer-lifetime-value-report-for-every-region-and-channel-background"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FUNCTIONS = {
    LONG: f"""
        def handler(event, context):
            context.log.info("loading s3://analytics-warehouse-production/exports/customers/" + "segment-" * 30)
            context.artifacts.write(
                "reports/2026-12/customer-lifetime-value-by-region-acquisition-channel-and-cohort.xlsx",
                b"PK\\x03\\x04", content_type="{XLSX}")
            context.artifacts.write("exports/clv_by_region_segment_channel_cohort_2026-12-04.parquet", b"PAR1")
            context.artifacts.write(
                "summary.json", "{{}}",
                content_type='application/json; profile="https://schemas.example.com/reports/clv/v3"')
            context.artifacts.write("a.csv", "x\\n1\\n")
            return {{"regions": 12, "top_segment_by_lifetime_value": "enterprise-customers-acquired-through-partners",
                    "checksum": "sha256:" + "9f" * 32}}
    """,
    "broken-background": """
        def handler(event, context):
            raise RuntimeError("upstream answered 502 for https://api.example.com/v2/customers?" + "page=" * 60)
    """,
}
TOML = f"""
[functions]
  directory = "netlify/functions"

[backburner.functions."*-background"]
  retries = []

[backburner.functions."{LONG}"]
  on_success = ["https://hooks.example.invalid/services/T0A1B2C3D4/B5E6F7G8H9/abcdefghijklmnopqrstuvwxyz0123456789"]
"""
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}

#: Every element inside a card that reaches past the card's right edge, and how far the page scrolls sideways.
OVERFLOW = """
() => {
  const spilled = [];
  for (const card of document.querySelectorAll('.card')) {
    const edge = card.getBoundingClientRect().right + 1;
    for (const el of card.querySelectorAll('*')) {
      const box = el.getBoundingClientRect();
      if (box.width && box.right > edge && !el.closest('pre, .log, .table-wrap')) {
        spilled.push(`${el.tagName.toLowerCase()}.${el.className}: ${el.textContent.slice(0, 60)}`);
      }
    }
  }
  return {spilled, sideways: document.documentElement.scrollWidth - window.innerWidth};
}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_server: Any) -> Iterator[dict[str, Any]]:
    extra = {"BACKBURNER_WEBHOOK_SECRET": generate_secret()}
    with running_stack(tmp_path_factory.mktemp("layout"), redis_server.url, FUNCTIONS, TOML, extra) as running:
        yield running


def finished(stack: dict[str, Any], name: str, key: str | None = None) -> str:
    headers = {"authorization": f"Bearer {TOKEN}", **({"idempotency-key": key} if key else {})}
    run_id = str(httpx.post(f"{stack['url']}/api/functions/{name}/runs", json={}, headers=headers).json()["id"])
    wait_for(lambda: api(stack, "GET", f"/api/runs/{run_id}").json()["status"] in ("succeeded", "failed"))
    return run_id


def test_the_run_page_keeps_long_names_inside_their_cards(page, stack, tmp_path: Path):
    target = Path(os.environ.get("BACKBURNER_LAYOUT_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    key = "nightly-clv-" + "0123456789abcdef" * 8
    good = finished(stack, LONG, key)
    wait_for(lambda: api(stack, "GET", f"/api/runs/{good}").json()["deliveries"], message="a webhook delivery record")
    bad = finished(stack, "broken-background")
    log_in(page, "/")
    for label, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        for run_id, name in ((good, "long-names"), (bad, "long-error")):
            page.goto(f"/runs/{run_id}")
            page.wait_for_selector("#run")
            if run_id == good:
                assert page.locator(".artifacts li").count() == 4
                assert page.get_by_text(XLSX).count() == 1  # shown whole, wrapped if need be
            found = page.evaluate(OVERFLOW)
            page.screenshot(path=str(target / f"run-{name}-{label}.png"), full_page=True)
            assert found["spilled"] == [], f"{name} at {width} px: {found['spilled']}"
            assert found["sideways"] <= 0, f"{name} at {width} px scrolls {found['sideways']} px sideways"
