"""`GET /api/functions/{name}/latest/artifacts/{artifact}` when no successful run has the artifact: the 404
says how many runs it looked at, in words that fit the count."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api import artifacts
from jobs.lifecycle import new_run
from jobs.runs import Result
from jobs.runtime import Runtime
from tests.support.attempts import finish

LATEST = "/api/functions/echo-background/latest/artifacts/report.csv"


def succeeded_without_artifacts(runtime: Runtime) -> None:
    run, _ = runtime.store.create(new_run(runtime.site.get("echo-background"), "api"), {})
    claimed = runtime.lifecycle.claim(run.id, run.token, "test-worker")
    assert claimed is not None
    finish(runtime, run.id, claimed[0].token, Result("ok", value={}))


def test_the_404_counts_the_runs_it_looked_at_in_singular_and_plural(client: TestClient, runtime: Runtime) -> None:
    succeeded_without_artifacts(runtime)
    one = client.get(LATEST)
    assert one.status_code == 404
    assert one.json()["error"]["message"] == (
        "The one successful run of 'echo-background' has no artifact 'report.csv'."
    )
    succeeded_without_artifacts(runtime)
    two = client.get(LATEST)
    assert two.status_code == 404
    assert two.json()["error"]["message"] == (
        "None of the 2 successful runs of 'echo-background' has an artifact 'report.csv'."
    )


def test_a_scan_cut_short_says_it_looked_at_the_newest_runs_only(
    client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(artifacts, "LATEST_SCAN", 100)  # one page of the store's listing, not 1,000 runs
    for _ in range(101):
        succeeded_without_artifacts(runtime)
    cut = client.get(LATEST)
    assert cut.status_code == 404
    assert cut.json()["error"]["message"] == (
        "None of the newest 100 successful runs of 'echo-background' has an artifact 'report.csv'."
    )
