"""Artifacts end to end: a real worker runs functions that write them, the API lists and serves them, from a
local folder store and from S3 (moto's server over HTTP), through outages, bad names and retention."""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import quote

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from jobs.artifacts.stores import store_for
from jobs.lifecycle import new_run
from jobs.runs import Result
from tests.support.attempts import finish
from tests.support.procs import wait_for
from tests.support.s3 import s3_client

from .helpers import finished, trigger
from .tcp import Switch

FRAME = pd.DataFrame({"city": ["Oslo", "Lima", "Pune"], "n": [3, 1, 2]})
BIG = b"0123456789abcde\n" * 65536


def test_written_artifacts_are_listed_and_downloadable(client, worker, settings):
    run_id = trigger(client, "report-background", {"tag": "one"})
    run = finished(client, run_id)
    assert run["status"] == "succeeded", run["error"]
    listed = {a["name"]: a for a in run["artifacts"]}
    assert list(listed) == ["report.html", "data/raw.bin", "big.txt", "frame.csv", "frame.parquet"]
    assert listed["report.html"] == {
        "name": "report.html",
        "size": len("<h1>one</h1>"),
        "content_type": "text/html; charset=utf-8",
        "url": f"/api/runs/{run_id}/artifacts/report.html",
    }
    assert listed["data/raw.bin"]["size"] == 1024
    assert listed["data/raw.bin"]["content_type"] == "application/octet-stream"
    assert listed["big.txt"]["size"] == len(BIG)
    assert listed["frame.csv"]["content_type"] == "text/csv"
    assert listed["frame.parquet"]["content_type"] == "application/vnd.apache.parquet"
    # On disk in the run's folder of the local store.
    folder = Path(settings.artifacts_url) / "runs" / "report-background" / run_id
    assert (folder / "data" / "raw.bin").read_bytes() == bytes(range(256)) * 4

    page = client.get(listed["report.html"]["url"])
    assert page.status_code == 200 and page.text == "<h1>one</h1>"
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-length"] == str(len("<h1>one</h1>"))
    assert page.headers["content-disposition"].startswith('attachment; filename="report.html"')
    assert page.headers["x-content-type-options"] == "nosniff"
    assert client.get(listed["data/raw.bin"]["url"]).content == bytes(range(256)) * 4
    assert client.get(listed["big.txt"]["url"]).content == BIG
    csv = client.get(listed["frame.csv"]["url"]).content
    pd.testing.assert_frame_equal(pd.read_csv(io.BytesIO(csv)), FRAME)
    parquet = client.get(listed["frame.parquet"]["url"]).content
    pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(parquet)), FRAME)


def test_latest_link_follows_the_newest_successful_run(client, worker):
    first = finished(client, trigger(client, "report-background", {"tag": "one"}))
    latest = "/api/functions/report-background/latest/artifacts/report.html"
    assert client.get(latest).text == "<h1>one</h1>"
    second = finished(client, trigger(client, "report-background", {"tag": "two"}))
    response = client.get(latest)
    assert response.text == "<h1>two</h1>"
    assert response.headers["x-backburner-run-id"] == second["id"] != first["id"]
    # A failed run wrote files before failing: it records none, and "latest" ignores it.
    failed = finished(client, trigger(client, "report-background", {"tag": "fail"}))
    assert failed["status"] == "failed" and failed["artifacts"] == []
    assert client.get(f"/api/runs/{failed['id']}/artifacts/report.html").status_code == 404
    assert client.get(latest).text == "<h1>two</h1>"
    missing = client.get("/api/functions/report-background/latest/artifacts/nope.txt")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "artifact_not_found"
    unknown = client.get("/api/functions/no-such-fn/latest/artifacts/report.html")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "function_not_found"


def test_bad_artifact_name_fails_the_attempt_with_the_rule(client, worker):
    run = finished(client, trigger(client, "bad-name-background"))
    assert run["status"] == "failed"
    assert run["error"]["type"] == "InvalidInput"
    assert "'..' segment" in run["error"]["message"]


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("%2E%2E/secret.txt", "'..' segment"),
        ("a/%2E%2E/%2E%2E/b", "'..' segment"),
        ("a%5Cb.txt", "backslash"),
        ("a%00b.txt", "control character"),
        ("a%0Ab.txt", "control character"),  # a newline, which Starlette's own path convertor stops at
        ("/etc/passwd", "absolute path"),
    ],
)
def test_bad_names_are_refused_on_download(client, runtime, path, rule):
    run, _ = runtime.store.create(new_run(runtime.site.get("report-background"), "api"), {})
    for url in (f"/api/runs/{run.id}/artifacts/{path}", f"/api/functions/report-background/latest/artifacts/{path}"):
        response = client.get(url)
        assert response.status_code == 400, (url, response.text)
        assert rule in response.json()["error"]["message"]


def test_unknown_run_and_unknown_artifact_are_404_json(client, runtime):
    missing = client.get("/api/runs/01NOPE/artifacts/report.html")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "run_not_found"
    run = _succeeded_run(runtime, {"a.txt": b"A"})
    unknown = client.get(f"/api/runs/{run}/artifacts/b.txt")
    assert unknown.status_code == 404
    assert unknown.json()["error"] == {
        "code": "artifact_not_found",
        "message": f"Run {run} (succeeded) has no artifact 'b.txt'; it has: 'a.txt'.",
    }


def test_a_recorded_artifact_whose_file_is_gone_is_a_404_that_keeps_the_stores_place_to_itself(client, runtime):
    run = _succeeded_run(runtime, {"a.txt": b"A"})
    store_for(runtime.settings.artifacts_url).delete_prefix(f"runs/report-background/{run}/")
    gone = client.get(f"/api/runs/{run}/artifacts/a.txt")
    assert gone.status_code == 404, gone.text
    message = gone.json()["error"]["message"]
    assert message == f"Run {run}'s artifact 'a.txt' is recorded, but its file is no longer in the store."
    assert runtime.settings.artifacts_url not in gone.text


@pytest.mark.parametrize("path", ["/api/runs/{run}/artifacts", "/api/functions/report-background/latest/artifacts"])
def test_an_artifact_url_without_a_name_is_a_404_that_says_to_name_one(client, runtime, path):
    """Not a redirect to the trailing slash (answered before the token was asked for), and that to a 400."""
    answer = client.get(path.format(run=_succeeded_run(runtime, {"a.txt": b"A"})), follow_redirects=False)
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"]["message"].startswith("Name the artifact: .../artifacts/{name}")


def test_downloads_need_the_token_outside_dev(settings, runtime):
    run = _succeeded_run(runtime, {"r é.txt": b"secret numbers"})
    strict = settings.model_copy(update={"dev": False, "api_token": "tok-123-0123456789abcdef"})
    with TestClient(create_app(strict)) as api:
        url = f"/api/runs/{run}/artifacts/{quote('r é.txt')}"
        latest = f"/api/functions/report-background/latest/artifacts/{quote('r é.txt')}"
        for path in (url, latest):
            denied = api.get(path)
            assert denied.status_code == 401 and denied.json()["error"]["code"] == "unauthorized"
            assert api.get(path, headers={"authorization": "Bearer wrong"}).status_code == 401
            ok = api.get(path, headers={"authorization": "Bearer tok-123-0123456789abcdef"})
            assert ok.status_code == 200 and ok.content == b"secret numbers"
        assert "filename*=UTF-8''r%20%C3%A9.txt" in ok.headers["content-disposition"]


def test_s3_artifacts_land_in_the_run_folder_and_download_by_redirect(client, worker, s3_bucket, s3_endpoint):
    run = finished(client, trigger(client, "huge-background"))
    assert run["status"] == "succeeded", run["error"]
    assert {a["name"]: a["size"] for a in run["artifacts"]} == {"huge.bin": 9 * 1024 * 1024, "note.txt": 14}
    s3 = s3_client(s3_endpoint)
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"])
    prefix = f"pfx/runs/huge-background/{run['id']}/"
    assert keys == [prefix + "huge.bin", prefix + "note.txt"]
    head = s3.head_object(Bucket=s3_bucket, Key=prefix + "huge.bin")
    assert head["ETag"].strip('"').endswith("-2")  # a path above 8 MiB went up in parts
    assert s3.head_object(Bucket=s3_bucket, Key=prefix + "note.txt")["ContentType"] == "text/plain; charset=utf-8"

    redirect = client.get(f"/api/runs/{run['id']}/artifacts/note.txt", follow_redirects=False)
    assert redirect.status_code == 307
    assert redirect.headers["location"].startswith(f"{s3_endpoint}/{s3_bucket}/{prefix}note.txt?")
    presigned = httpx.get(redirect.headers["location"])
    assert presigned.content == b"nine mebibytes"
    # Opened from the link, the file is saved with its own type, never rendered on the bucket's origin.
    assert presigned.headers["content-disposition"].startswith('attachment; filename="note.txt"')
    assert presigned.headers["content-type"] == "text/plain; charset=utf-8"
    streamed = client.get(f"/api/runs/{run['id']}/artifacts/note.txt?redirect=0")
    assert streamed.status_code == 200 and streamed.content == b"nine mebibytes"
    latest = client.get("/api/functions/huge-background/latest/artifacts/note.txt", follow_redirects=False)
    assert latest.status_code == 307 and prefix in latest.headers["location"]


def test_s3_outage_fails_the_attempt_and_the_retry_stores_everything(
    client, start_worker, runtime, s3_bucket, s3_switch: Switch, s3_endpoint
):
    s3_switch.up = False
    start_worker()
    run_id = trigger(client, "flaky-store-background")
    run = wait_for(
        lambda: (
            (r := client.get(f"/api/runs/{run_id}").json())["status"] in ("retrying", "running")
            and r["attempts"][0]["outcome"] == "failed"
            and r
        ),
        timeout=60,
        message="the first attempt to fail",
    )
    assert run["attempts"][0]["error"]["type"] == "DeliveryError"
    assert s3_bucket in run["attempts"][0]["error"]["message"]
    assert run["artifacts"] == []
    s3_switch.up = True
    run = finished(client, run_id)
    assert run["status"] == "succeeded"
    assert [a["outcome"] for a in run["attempts"]] == ["failed", "succeeded"]
    assert [a["name"] for a in run["artifacts"]] == ["out.txt"]
    body = s3_client(s3_endpoint).get_object(Bucket=s3_bucket, Key=f"pfx/runs/flaky-store-background/{run_id}/out.txt")
    assert body["Body"].read() == b"attempt 2"


def test_an_s3_store_that_is_down_makes_downloads_a_503_until_it_is_back(
    client, start_worker, s3_bucket, s3_switch: Switch
):
    start_worker()
    run = finished(client, trigger(client, "notify-background"))
    assert run["status"] == "succeeded", run["error"]
    url = f"/api/runs/{run['id']}/artifacts/summary.txt"
    s3_switch.up = False
    for query in ("", "?redirect=0"):
        down = client.get(url + query, follow_redirects=False)
        assert down.status_code == 503, down.text
        assert down.json()["error"]["code"] == "store_unavailable"
        assert s3_bucket not in down.text and s3_switch.url not in down.text  # the log has the store's words
    s3_switch.up = True
    assert client.get(url + "?redirect=0").content == b"all good"


def test_s3_down_for_good_fails_the_run_without_artifacts(client, start_worker, s3_bucket, s3_switch: Switch):
    s3_switch.up = False
    start_worker()
    run = finished(client, trigger(client, "notify-background"))
    assert run["status"] == "failed" and run["artifacts"] == []
    assert run["error"]["type"] == "DeliveryError"


def test_retention_removes_old_runs_records_and_artifacts(client, worker, runtime, settings):
    kept = finished(client, trigger(client, "notify-background"))
    run = finished(client, trigger(client, "ephemeral-background"))
    assert run["status"] == "succeeded"
    folder = Path(settings.artifacts_url) / "runs" / "ephemeral-background" / run["id"]
    assert (folder / "tmp.txt").read_text() == "short-lived"
    wait_for(lambda: client.get(f"/api/runs/{run['id']}").status_code == 404, timeout=30, message="retention")
    assert not (folder / "tmp.txt").exists()
    keys = runtime.store.keys
    assert not any(runtime.client.exists(key) for key in keys.run_keys(run["id"]))
    assert runtime.client.zscore(keys.function_runs("ephemeral-background"), run["id"]) is None
    assert run["id"] not in [r["id"] for r in client.get("/api/runs").json()["runs"]]
    assert client.get(f"/api/runs/{kept['id']}").json()["status"] == "succeeded"  # no retention configured


def test_retention_on_s3_deletes_the_run_folder(runtime, settings, s3_bucket, s3_endpoint):
    from jobs.worker.retention import Retention

    run_id = _succeeded_run(runtime, {"tmp.txt": b"x", "sub/y.txt": b"y"}, function="ephemeral-background")
    other = _succeeded_run(runtime, {"tmp.txt": b"keep"}, function="report-background")
    s3 = s3_client(s3_endpoint)
    assert s3.list_objects_v2(Bucket=s3_bucket)["KeyCount"] == 3
    retention = Retention(settings, runtime.client, runtime.store.keys, lambda: runtime.site, "test")
    function = runtime.site.get("ephemeral-background")
    wait_for(lambda: retention.sweep_function(function, 0.001), message="the run to be older than 1 ms")
    assert not runtime.client.exists(runtime.store.keys.run(run_id))
    remaining = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket).get("Contents", [])]
    assert remaining == [f"pfx/runs/report-background/{other}/tmp.txt"]


def _succeeded_run(runtime, files: dict[str, bytes], function: str = "report-background") -> str:
    """A succeeded run whose artifacts were put in the store directly (no worker needed)."""
    run, _ = runtime.store.create(new_run(runtime.site.get(function), "api"), {})
    store = store_for(runtime.settings.artifacts_url)
    written = []
    for name, data in files.items():
        info = store.put(f"runs/{function}/{run.id}/{name}", data, "text/plain")
        written.append({"name": name, "size": info.size, "content_type": "text/plain", "url": None})
    claimed = runtime.lifecycle.claim(run.id, run.token, "test-worker")
    assert claimed is not None
    finish(runtime, run.id, claimed[0].token, Result("ok", value={}, artifacts=written))
    return run.id
