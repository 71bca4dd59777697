"""``GET /api/functions`` and ``backburner functions --json``: every effective setting of every function."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.sites import make_site

FUNCTIONS = {
    "tuned-background": """
        def handler(event, context):
            return None
    """,
    "plain-background": """
        def handler(event, context):
            return None
    """,
    "hello": """
        config = {"path": "/hi"}
        def handler(event, context):
            return {"statusCode": 200, "body": "hi"}
    """,
    "tick": """
        def handler(event, context):
            return {"statusCode": 200}
    """,
}
TOML = """
[functions]
  directory = "netlify/functions"

[functions."tuned-background"]
  schedule = "0 6 * * 1-5"

[functions."tick"]
  schedule = "@hourly"

[backburner.functions."tuned-background"]
  timezone = "Europe/Berlin"
  time_limit = "20m"
  retries = ["1m", "5m"]
  concurrency = 2
  overlap = "queue"
  catchup = "all"
  catchup_window = "3h"
  retention = "30d"
  on_success = ["https://hooks.example.com/ok"]
  on_failure = ["https://ops:Hunter22-pass@hooks.example.com/alert?key=Qu3ry-key"]
  artifacts = "s3://reports-bucket/tuned"
  memory_limit = "512MB"
  max_result = "64KB"
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return make_site(tmp_path / "site", FUNCTIONS, TOML)


def check(listing: list[dict[str, Any]], default_store: str) -> None:
    by_name = {entry["name"]: entry for entry in listing}
    tuned = dict(by_name["tuned-background"])
    next_runs = tuned.pop("next_runs")
    tuned["destinations"] = {k: v for k, v in tuned["destinations"].items() if k != "disabled"}
    assert tuned == {
        "name": "tuned-background",
        "kind": "background",
        "schedule": "0 6 * * 1-5",
        "timezone": "Europe/Berlin",
        "time_limit_s": 1200.0,
        "retry_delays_s": [60.0, 300.0],
        "body_limit_bytes": 256 * 1024,
        "memory_limit_bytes": 512 * 1024 * 1024,
        "max_result_bytes": 64 * 1024,
        "concurrency": 2,
        "overlap": "queue",
        "catchup": "all",
        "catchup_window_s": 10800.0,
        "retention_s": 30 * 86400.0,
        "routes": [],
        "destinations": {
            "on_success": ["https://hooks.example.com/ok"],
            "on_failure": ["https://hooks.example.com/alert"],  # no user info or query: either may be a credential
            "artifacts": "s3://reports-bucket/tuned",
        },
    }
    assert len(next_runs) == 3
    # Defaults are spelled out, not left for the reader to know: Netlify's limits, Backburner's policies.
    plain = by_name["plain-background"]
    assert (plain["time_limit_s"], plain["retry_delays_s"], plain["concurrency"]) == (900.0, [60.0, 120.0], None)
    assert (plain["overlap"], plain["catchup"], plain["catchup_window_s"], plain["retention_s"]) == (
        "skip",
        "latest",
        3600.0,
        None,
    )
    assert plain["destinations"]["artifacts"] == default_store
    hello, tick = by_name["hello"], by_name["tick"]
    assert (hello["kind"], hello["time_limit_s"], hello["body_limit_bytes"], hello["routes"]) == (
        "sync",
        60.0,
        6 * 1024 * 1024,
        ["/hi"],
    )
    assert (tick["time_limit_s"], tick["retry_delays_s"]) == (30.0, [])  # a scheduled sync run's limit


def test_the_api_lists_every_effective_setting(client, settings):
    response = client.get("/api/functions")
    assert response.status_code == 200
    check(response.json(), settings.artifacts_url)
    tuned = next(entry for entry in response.json() if entry["name"] == "tuned-background")
    assert tuned["destinations"]["disabled"] == []


def test_functions_json_lists_the_same_settings(site, tmp_path):
    data = tmp_path / "data"
    env = {**os.environ, "BACKBURNER_DATA_DIR": str(data)}
    env.pop("BACKBURNER_ARTIFACTS", None)
    done = subprocess.run(
        [sys.executable, "-m", "backburner", "functions", "--json", "--site", str(site)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    check(json.loads(done.stdout), str(data / "artifacts"))
