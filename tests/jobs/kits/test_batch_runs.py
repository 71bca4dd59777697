"""Batch runs end to end with real workers: a child killed mid-batch resumes without duplicates, and fan-out
spreads slices over child runs and merges them on the parent."""

from __future__ import annotations

import io

import pandas as pd

from tests.jobs.results.helpers import finished, trigger

ROWS = 5_000


def frame(start: int = 0, stop: int = ROWS) -> pd.DataFrame:
    return pd.DataFrame({"id": range(start, stop), "value": [i % 97 for i in range(start, stop)]})


def download_parts(client, run: dict, suffix: str = ".parquet") -> pd.DataFrame:
    parts = [a for a in run["artifacts"] if a["name"].startswith("output/") and a["name"].endswith(suffix)]
    assert parts, run["artifacts"]
    return pd.concat([pd.read_parquet(io.BytesIO(client.get(a["url"]).content)) for a in parts], ignore_index=True)


def test_a_child_killed_mid_batch_resumes_at_the_next_chunk_without_duplicates(client, worker, tmp_path):
    source = tmp_path / "in.csv"
    frame().to_csv(source, index=False)
    run_id = trigger(client, "kit-crash-background", {"source": str(source), "chunk_rows": 600, "crash_after": 4})
    run = finished(client, run_id)
    assert run["status"] == "succeeded", run["error"]
    assert [a["outcome"] for a in run["attempts"]] == ["crashed", "succeeded"]
    assert "exit code 9" in run["attempts"][0]["error"]["message"]
    result = run["result"]
    assert result["resumed_at_chunk"] == 4  # chunks 0-3 were checkpointed; chunk 4 died half-way
    assert result["calls"] == 9 - 4  # the retry ran chunks 4..8 only
    assert (result["rows_in"], result["rows_out"], result["chunks"]) == (ROWS, ROWS, 9)
    output = download_parts(client, run)
    assert sorted(output["id"]) == list(range(ROWS))  # every row exactly once
    by_attempt = output.groupby("attempt")["id"].agg(["min", "max", "count"]).to_dict("index")
    assert by_attempt == {1: {"min": 0, "max": 2399, "count": 2400}, 2: {"min": 2400, "max": ROWS - 1, "count": 2600}}
    assert not any("_staging" in a["name"] for a in run["artifacts"])


def test_fan_out_splits_rows_over_child_runs_and_merges_on_the_parent(client, start_worker, runtime, tmp_path):
    from tests.support.procs import wait_for

    start_worker(threads=3)
    wait_for(lambda: runtime.client.zcard(runtime.store.keys.workers), timeout=30, message="worker heartbeat")
    source = tmp_path / "in.csv"
    frame().to_csv(source, index=False)
    parent_id = trigger(client, "kit-fanout-background", {"source": str(source), "children": 3})
    parent = finished(client, parent_id, timeout=90)
    assert parent["status"] == "succeeded", parent["error"]
    result = parent["result"]
    assert (result["rows_in"], result["rows_out"], result["rows_rejected"]) == (ROWS, ROWS, 0)
    assert len(result["children"]) == 3
    assert parent["progress"]["done"] == ROWS and parent["progress"]["total"] == ROWS
    children = [client.get(f"/api/runs/{child}").json() for child in result["children"]]
    assert [c["status"] for c in children] == ["succeeded"] * 3
    assert [c["result"]["rows_in"] for c in children] == [1667, 1667, 1666]
    assert {c["trigger"] for c in children} == {"api"} and {c["artifacts"] == [] for c in children} == {True}
    output = download_parts(client, parent)
    assert sorted(output["id"]) == list(range(ROWS))
    assert set(output["run"]) == set(result["children"])  # the children did the work
    assert output.groupby("run")["id"].min().sort_values().tolist() == [0, 1667, 3334]


def test_a_slice_that_failed_for_good_is_started_again_by_the_parents_retry(client, start_worker, runtime, tmp_path):
    from tests.support.procs import wait_for

    start_worker(threads=3)
    wait_for(lambda: runtime.client.zcard(runtime.store.keys.workers), timeout=30, message="worker heartbeat")
    folder = tmp_path / "parts"
    folder.mkdir()
    for n, start in enumerate(range(0, ROWS, 1250)):
        frame(start, start + 1250).to_csv(folder / f"part{n}.csv", index=False)
    payload = {"source": str(folder), "children": 2, "fail_marker": str(tmp_path / "marker")}
    parent = finished(client, trigger(client, "kit-fanout-background", payload), timeout=90)
    assert parent["status"] == "succeeded", parent["error"]
    assert [a["outcome"] for a in parent["attempts"]] == ["failed", "succeeded"]
    first_error = parent["attempts"][0]["error"]
    assert first_error["type"] == "FanOutFailed" and "1 of 2 child runs did not succeed" in first_error["message"]
    failed_child = first_error["message"].split(": ", 1)[1].split(" ", 1)[0]
    final = parent["result"]["children"]
    assert failed_child not in final
    assert client.get(f"/api/runs/{failed_child}").json()["status"] == "failed"
    assert [client.get(f"/api/runs/{c}").json()["status"] for c in final] == ["succeeded", "succeeded"]
    output = download_parts(client, parent)
    assert sorted(output["id"]) == list(range(ROWS))  # the failed child's staged chunk was replaced, not added
    assert output.loc[output["id"] >= 2500, "run"].unique().tolist() == [final[1]]


def test_a_batch_call_that_cannot_work_fails_at_once_and_a_missing_source_is_retried(client, worker, tmp_path):
    """A mistake in the call fails the same way every time, so the run fails on its first attempt; a source
    file that is not there yet may still come, so that is retried on the function's schedule."""
    mistake = {"source": str(tmp_path / "in.csv"), "chunk_rows": 0, "crash_after": 99}
    run = finished(client, trigger(client, "kit-crash-background", mistake))
    assert run["status"] == "failed"
    assert [a["outcome"] for a in run["attempts"]] == ["failed"]
    assert run["error"]["type"] == "BatchError" and "chunk_rows must be at least 1" in run["error"]["message"]
    missing = {"source": str(tmp_path / "later.csv"), "chunk_rows": 100, "crash_after": 99}
    run = finished(client, trigger(client, "kit-crash-background", missing))
    assert [a["outcome"] for a in run["attempts"]] == ["failed", "failed"]
    assert "later.csv' does not exist" in run["error"]["message"]
