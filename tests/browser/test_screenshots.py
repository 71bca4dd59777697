"""Screenshots of the main pages, over a day of history plus a live run, taken in the real browser.

They go to a temporary folder (checking only that every page renders cleanly); with
``BACKBURNER_SCREENSHOTS=docs`` they refresh the README's images in ``docs/``:

    BACKBURNER_SCREENSHOTS=docs .venv/bin/pytest tests/browser/test_screenshots.py
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobs.delivery.webhooks import generate_secret
from jobs.settings import Settings
from jobs.wiring import open_runtime
from tests.support.history import seed_runs
from tests.support.procs import wait_for

from .conftest import api, running_stack
from .test_dashboard import log_in

FUNCTIONS = {
    "nightly-report-background": """
        import json, time
        def handler(event, context):
            steps = json.loads(event["body"] or "{}").get("steps", 12)
            context.log.info("loading orders from the warehouse (3 regions)")
            for i in range(steps):
                time.sleep(0.7)
                context.log.info(f"region batch {i + 1}/{steps}: {1200 + 37 * i} orders aggregated")
                context.progress(i + 1, steps, f"aggregating batch {i + 1} of {steps}")
            context.artifacts.write("report.csv", "region,orders\\nnorth,1200\\n")
            return {"rows": 1200}
    """,
    "sync-crm-background": """
        def handler(event, context):
            return {"synced": 0}
    """,
    "thumbnails-background": """
        def handler(event, context):
            return {"thumbnails": 0}
    """,
    "send-digest-background": """
        def handler(event, context):
            return {"sent": 0}
    """,
    "hello": """
        def handler(event, context):
            return {"statusCode": 200, "body": "hello"}
    """,
}
TOML = """
[functions]
  directory = "netlify/functions"

[functions."nightly-report-background"]
  schedule = "0 3 * * *"

[functions."sync-crm-background"]
  schedule = "*/15 * * * *"

[functions."send-digest-background"]
  schedule = "0 8 * * 1"

[backburner.functions."nightly-report-background"]
  timezone = "Europe/Oslo"
  time_limit = "30m"
  on_failure = ["https://alerts.example.com/hooks/backburner?token=not-shown"]

[backburner.functions."sync-crm-background"]
  overlap = "skip"
  retries = ["30s", "2m", "10m"]

[backburner.functions."send-digest-background"]
  on_success = ["https://hooks.example.com/digest"]
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_server: Any) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("screens")
    extra = {"BACKBURNER_WEBHOOK_SECRET": generate_secret()}
    with running_stack(root, redis_server.url, FUNCTIONS, TOML, extra) as running:
        yield running


def test_screenshots_of_the_main_pages(page, stack, tmp_path: Path):
    target = Path(os.environ.get("BACKBURNER_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    env = stack["env"]
    runtime = open_runtime(
        Settings(redis_url=env["REDIS_URL"], namespace=env["BACKBURNER_NAMESPACE"], site=stack["site"])
    )
    try:
        ids = seed_runs(runtime, 1800)
        failed = next(i for i in ids if runtime.store.get(i).status == "failed")
    finally:
        runtime.close()
    live = api(stack, "POST", "/api/functions/nightly-report-background/runs", json={"steps": 14}).json()["id"]
    log_in(page, "/")
    page.wait_for_selector(".chart")
    page.screenshot(path=str(target / "dashboard-overview.png"), full_page=True)

    page.goto("/functions")
    page.screenshot(path=str(target / "dashboard-functions.png"), full_page=False)

    page.goto("/runs")
    page.wait_for_selector(f"a[href='/runs/{live}']")
    page.screenshot(path=str(target / "dashboard-runs.png"), full_page=False)

    page.goto(f"/runs/{live}")
    wait_for(lambda: (api(stack, "GET", f"/api/runs/{live}").json()["progress"]["done"] or 0) >= 6, message="progress")
    page.wait_for_function("() => document.querySelectorAll('#log li').length >= 6")
    page.screenshot(path=str(target / "dashboard-run.png"), full_page=True)
    page.goto(f"/runs/{failed}")
    page.screenshot(path=str(target / "dashboard-run-failed.png"), full_page=True)
    for name in ("overview", "functions", "runs", "run", "run-failed"):
        assert (target / f"dashboard-{name}.png").stat().st_size > 10_000
    api(stack, "POST", f"/api/runs/{live}/cancel")
