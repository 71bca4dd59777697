"""Webhooks end to end: a real worker finishes runs, its outbox delivers them to a real loopback receiver, and
every delivery is checked with the ``standardwebhooks`` reference library (not with our own code)."""

from __future__ import annotations

import json

import httpx
from standardwebhooks import Webhook

from tests.support.http import Received, WebhookReceiver
from tests.support.procs import wait_for
from tests.support.s3 import presign_problem

from .conftest import SECRET
from .helpers import finished, trigger


def verified(request: Received) -> dict:
    """The event, if the signature verifies with the reference library (it raises otherwise)."""
    event: dict = Webhook(SECRET).verify(request.body.decode(), request.headers)
    return event


def delivered(client, run_id: str, count: int = 1, timeout: float = 30.0) -> list[dict]:
    """The run's delivery records once ``count`` are recorded and the last one is final."""

    def done() -> list[dict] | None:
        records = client.get(f"/api/runs/{run_id}").json()["deliveries"]
        return records if len(records) >= count and records[-1]["outcome"] != "retrying" else None

    return wait_for(done, timeout=timeout, message=f"{count} deliveries of run {run_id}")


def test_on_success_delivers_the_signed_run_record_with_artifact_links(client, worker, hook: WebhookReceiver):
    run = finished(client, trigger(client, "notify-background"))
    [request] = hook.wait_for(1)
    event = verified(request)
    assert request.headers["webhook-id"] == f"msg_{run['id']}_0"
    assert request.headers["content-type"] == "application/json"
    assert event["type"] == "run.succeeded"
    assert event["timestamp"] == run["finished_at"]
    data = event["data"]
    assert {k: data[k] for k in ("id", "function", "status", "result", "attempt")} == {
        "id": run["id"],
        "function": "notify-background",
        "status": "succeeded",
        "result": {"rows": 3},
        "attempt": 1,
    }
    assert "deliveries" not in data and "token" not in data
    [artifact] = data["artifacts"]
    assert artifact["url"] == f"http://127.0.0.1:8888/api/runs/{run['id']}/artifacts/summary.txt"
    assert artifact["expires_at"] is None  # a local store: the API link (with the token) does not expire
    assert client.get(artifact["url"].removeprefix("http://127.0.0.1:8888")).text == "all good"
    [record] = delivered(client, run["id"])
    assert record["outcome"] == "delivered" and record["ok"] is True and record["status"] == 200
    assert record["webhook_id"] == f"msg_{run['id']}_0" and record["attempt"] == 1
    assert record["event"] == "run.succeeded" and record["url"] == hook.url


def test_receiver_failing_twice_gets_it_on_the_third_attempt(client, worker, hook: WebhookReceiver):
    hook.configure(fail_first=2, fail_status=503)
    run = finished(client, trigger(client, "notify-background"))
    records = delivered(client, run["id"], count=3)
    assert [(r["attempt"], r["status"], r["outcome"]) for r in records] == [
        (1, 503, "retrying"),
        (2, 503, "retrying"),
        (3, 200, "delivered"),
    ]
    assert records[0]["next_attempt_at"] and "HTTP 503" in records[0]["error"]
    requests = hook.wait_for(3)
    assert len(requests) == 3
    assert {r.headers["webhook-id"] for r in requests} == {f"msg_{run['id']}_0"}
    assert [verified(r)["data"]["id"] for r in requests] == [run["id"]] * 3


def test_retry_after_is_honoured(client, worker, hook: WebhookReceiver):
    hook.configure(fail_first=1, fail_status=429, retry_after="1")
    run = finished(client, trigger(client, "notify-background"))
    first, second = hook.wait_for(2)
    assert second.at - first.at >= 1.0  # the schedule alone would retry after 0.2 s
    records = delivered(client, run["id"], count=2)
    assert records[0]["retry_after_s"] == 1.0 and records[-1]["outcome"] == "delivered"


def test_receiver_down_then_back_gets_the_event_with_the_same_id(client, worker, hook: WebhookReceiver):
    hook.stop()
    run = finished(client, trigger(client, "notify-background"))
    failures = wait_for(
        lambda: len(r := client.get(f"/api/runs/{run['id']}").json()["deliveries"]) >= 2 and r,
        message="two failed attempts",
    )
    assert all(r["status"] is None and "connection" in r["error"] for r in failures[:2])
    hook.start()
    [request] = hook.wait_for(1)
    assert request.headers["webhook-id"] == f"msg_{run['id']}_0"
    verified(request)
    assert delivered(client, run["id"], count=3)[-1]["outcome"] == "delivered"


def test_slow_receiver_times_out_and_is_retried(client, worker, hook: WebhookReceiver):
    hook.configure(delay_s=5.0)
    run = finished(client, trigger(client, "notify-background"))
    hook.wait_for(1)
    hook.configure(delay_s=0.0)
    records = delivered(client, run["id"], count=2)
    assert records[0]["outcome"] == "retrying" and "timed out after 0.5 s" in records[0]["error"]
    assert records[-1]["outcome"] == "delivered"
    assert {r.headers["webhook-id"] for r in hook.requests} == {f"msg_{run['id']}_0"}


def test_410_disables_the_endpoint_for_the_function(client, worker, runtime, hook: WebhookReceiver):
    hook.configure(status=410)
    first = finished(client, trigger(client, "notify-background"))
    [record] = delivered(client, first["id"])
    assert record["outcome"] == "disabled" and record["gone"] is True
    assert runtime.client.sismember(runtime.store.keys.webhooks_gone("notify-background"), hook.url)
    second = finished(client, trigger(client, "notify-background"))
    [skipped] = delivered(client, second["id"])
    assert skipped["outcome"] == "skipped" and "410 Gone" in skipped["error"]
    assert "POST /api/functions/notify-background/webhooks/enable" in skipped["error"]
    assert len(hook.requests) == 1

    listing = {f["name"]: f for f in client.get("/api/functions").json()}
    assert listing["notify-background"]["destinations"]["disabled"] == [hook.url]
    wrong = client.post("/api/functions/notify-background/webhooks/enable", json={"url": "https://elsewhere.example"})
    assert wrong.status_code == 409 and hook.url in wrong.json()["error"]["message"]
    assert client.post("/api/functions/no-such-function/webhooks/enable").status_code == 404
    misspelt = client.post("/api/functions/notify-background/webhooks/enable", json={"URL": hook.url})
    assert misspelt.status_code == 422 and "URL" in misspelt.json()["error"]["message"]
    assert runtime.client.sismember(runtime.store.keys.webhooks_gone("notify-background"), hook.url)
    enabled = client.post("/api/functions/notify-background/webhooks/enable")
    assert enabled.json() == {"function": "notify-background", "enabled": [hook.url]}
    assert not runtime.client.exists(runtime.store.keys.webhooks_gone("notify-background"))
    hook.configure(status=200)
    third = finished(client, trigger(client, "notify-background"))
    assert delivered(client, third["id"])[-1]["outcome"] == "delivered"


def test_exactly_one_on_failure_per_failed_run(client, worker, runtime, hook: WebhookReceiver):
    run = finished(client, trigger(client, "doomed-background"))
    assert run["status"] == "failed" and len(run["attempts"]) == 3
    [record] = delivered(client, run["id"])
    assert record["event"] == "run.failed" and record["outcome"] == "delivered"
    wait_for(lambda: runtime.client.zcard(runtime.store.keys.outbox_due) == 0, message="an empty outbox")
    [request] = hook.requests  # nothing else is pending, so nothing else can arrive
    event = verified(request)
    assert event["type"] == "run.failed"
    assert event["data"]["error"]["message"] == "doomed on attempt 3"
    assert [a["outcome"] for a in event["data"]["attempts"]] == ["failed"] * 3
    assert "never" not in request.path


def test_private_destination_is_refused_and_recorded(client, worker, hook: WebhookReceiver):
    run = finished(client, trigger(client, "private-hook-background"))
    [record] = delivered(client, run["id"])
    assert record["outcome"] == "refused" and record["ok"] is False
    assert "10.255.0.2, a private address" in record["error"]
    assert "BACKBURNER_WEBHOOK_ALLOW=10.255.0.2" in record["error"]
    assert hook.requests == []


def test_pending_deliveries_survive_a_worker_crash(client, start_worker, runtime, hook: WebhookReceiver):
    hook.configure(fail_first=1, fail_status=503, retry_after="2")
    first = start_worker()
    wait_for(lambda: runtime.client.zcard(runtime.store.keys.workers), message="worker heartbeat")
    run = finished(client, trigger(client, "notify-background"))
    [failed] = wait_for(lambda: client.get(f"/api/runs/{run['id']}").json()["deliveries"], message="attempt 1")
    assert failed["outcome"] == "retrying"
    first.kill()
    start_worker()
    requests = hook.wait_for(2, timeout=30)
    assert [r.headers["webhook-id"] for r in requests] == [f"msg_{run['id']}_0"] * 2
    assert delivered(client, run["id"], count=2)[-1]["outcome"] == "delivered"


def test_s3_presigned_link_in_the_payload_fetches_the_artifact(client, worker, hook, s3_bucket, s3_endpoint):
    run = finished(client, trigger(client, "notify-background"))
    [request] = hook.wait_for(1)
    [artifact] = verified(request)["data"]["artifacts"]
    assert artifact["name"] == "summary.txt" and artifact["expires_at"]
    assert artifact["url"].startswith(f"{s3_endpoint}/{s3_bucket}/pfx/runs/notify-background/{run['id']}/summary.txt?")
    assert presign_problem(artifact["url"]) is None
    assert httpx.get(artifact["url"]).content == b"all good"
    assert json.loads(request.body)["data"]["id"] == run["id"]
