"""Delayed runs (DESIGN.md section 9): ``?delay=`` / ``?run_at=``, queued within a second of their time by real
workers, durable across restarts of everything (Redis included), cancellable, and never held up by far ones."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from jobs import clock
from jobs.lifecycle import new_run
from jobs.runtime import Runtime
from jobs.settings import Settings
from jobs.wiring import open_runtime
from tests.jobs.results.helpers import finished
from tests.support.procs import WorkerProc, wait_for
from tests.support.redis import RedisServer


def trigger(client: TestClient, name: str, payload: object = None, **params: str) -> dict:
    answer = client.post(f"/api/functions/{name}/runs", json=payload or {}, params=params)
    assert answer.status_code == 202, answer.text
    return dict(answer.json())


def started_late_s(run: dict) -> float:
    """How long after its run_at the run's first attempt started."""
    return (clock.parse_iso(run["attempts"][0]["started_at"]) - clock.parse_iso(run["run_at"])).total_seconds()


def test_a_delayed_run_waits_then_starts_within_a_second_of_its_time(
    client: TestClient, runtime: Runtime, worker: WorkerProc
) -> None:
    before = clock.now()
    run = trigger(client, "echo-background", {"n": 1}, delay="2s")
    assert run["status"] == "delayed" and run["attempts"] == [] and run["trigger"] == "api"
    due = clock.parse_iso(run["run_at"])
    assert timedelta(seconds=2) <= due - before <= timedelta(seconds=2) + (clock.now() - before)
    assert runtime.client.zscore(runtime.store.keys.delayed, run["id"]) == int(due.timestamp() * 1000)
    assert client.get(f"/api/runs/{run['id']}").json()["status"] == "delayed"
    done = finished(client, run["id"])
    assert done["status"] == "succeeded" and json.loads(done["result"]["event"]["body"]) == {"n": 1}
    assert 0 <= started_late_s(done) < 1.0, done["attempts"]
    assert runtime.client.zscore(runtime.store.keys.delayed, run["id"]) is None

    at = trigger(client, "echo-background", {}, run_at=clock.iso(clock.now() + timedelta(seconds=1.5)))
    assert 0 <= started_late_s(finished(client, at["id"])) < 1.0
    naive = (clock.now() + timedelta(seconds=1)).replace(tzinfo=None).isoformat()  # UTC without a zone
    assert trigger(client, "echo-background", {}, run_at=naive)["run_at"] == clock.iso(clock.parse_iso(naive + "Z"))
    past = trigger(client, "echo-background", {}, run_at="2020-01-01T00:00:00Z")
    assert past["status"] == "delayed" and finished(client, past["id"])["status"] == "succeeded"  # due at once


def test_bad_delays_are_400_and_store_nothing(client: TestClient, runtime: Runtime) -> None:
    cases = [
        ({"delay": "soon"}, "is not a duration"),
        ({"delay": "-5s"}, "is not a duration"),
        ({"delay": "366d"}, "more than a year"),
        ({"run_at": "next tuesday"}, "not an ISO 8601 time"),
        ({"run_at": clock.iso(clock.now() + timedelta(days=366))}, "more than a year ahead"),
        ({"delay": "1s", "run_at": "2030-01-01T00:00:00Z"}, "not both"),
    ]
    for params, words in cases:
        answer = client.post("/api/functions/echo-background/runs", json={}, params=params)
        assert answer.status_code == 400, (params, answer.text)
        assert answer.json()["error"]["code"] == "invalid_input" and words in answer.json()["error"]["message"]
    assert runtime.store.runs()[0] == [] and runtime.client.zcard(runtime.store.keys.delayed) == 0
    assert trigger(client, "echo-background", delay="365d")["status"] == "delayed"  # a year is fine


def test_cancel_before_it_starts_and_idempotency(client: TestClient, runtime: Runtime, worker: WorkerProc) -> None:
    run = trigger(client, "echo-background", {}, delay="1.5s")
    cancelled = client.post(f"/api/runs/{run['id']}/cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["attempts"] == []
    assert runtime.client.zscore(runtime.store.keys.delayed, run["id"]) is None
    later = trigger(client, "echo-background", {}, delay="0.5s")
    finished(client, later["id"])  # a later delayed run went through: the cancelled one had its chance
    assert client.get(f"/api/runs/{run['id']}").json()["status"] == "cancelled"
    assert client.post(f"/api/runs/{run['id']}/cancel").status_code == 409

    headers = {"idempotency-key": "nightly-2026-03-01"}
    first = client.post("/api/functions/echo-background/runs", json={}, params={"delay": "1h"}, headers=headers)
    again = client.post("/api/functions/echo-background/runs", json={}, params={"delay": "1h"}, headers=headers)
    assert first.json()["id"] == again.json()["id"] and runtime.client.zcard(runtime.store.keys.delayed) == 1


def test_far_runs_never_hold_up_near_ones(client: TestClient, runtime: Runtime, worker: WorkerProc) -> None:
    function = runtime.site.get("echo-background")
    far = clock.now() + timedelta(days=300)
    for _ in range(5):  # 2,500 runs a long way off, created in batches as a busy API would
        items = []
        for _ in range(500):
            run = new_run(function, "api")
            run.status, run.run_at = "delayed", clock.iso(far)
            items.append((run, {"body": "{}"}))
        runtime.store.create_many(items)
    near = [trigger(client, "echo-background", {"n": n}, delay="1s") for n in range(200)]
    done = [finished(client, run["id"], timeout=60) for run in near]
    assert all(run["status"] == "succeeded" for run in done)
    assert max(started_late_s(run) for run in done[:20]) < 1.5  # the first ones on time, the rest as workers free
    assert runtime.client.zcard(runtime.store.keys.delayed) == 2500


@pytest.fixture
def private_redis(tmp_path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis") as server:
        yield server


def test_a_delayed_run_survives_restarts_of_everything(
    site, env: dict[str, str], private_redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.app import create_app

    env = {**env, "REDIS_URL": private_redis.url}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    with TestClient(create_app(settings), base_url="http://localhost") as api:
        run = trigger(api, "echo-background", {"kept": True}, delay="3s")
    private_redis.restart(kill=True)  # Redis, the API, and (never started yet) the workers: all gone and back
    runtime = open_runtime(settings)
    worker = WorkerProc(site, env).start()
    try:
        wait_for(lambda: runtime.store.get(run["id"]).status == "succeeded", timeout=60, message="the delayed run")
        done = runtime.store.get(run["id"])
        assert done.attempt == 1 and json.loads(done.result["event"]["body"]) == {"kept": True}
        assert (clock.parse_iso(done.attempts[0].started_at) - clock.parse_iso(done.run_at or "")).total_seconds() < 1
    finally:
        worker.stop()
        runtime.close()


def test_the_reaper_queues_a_delayed_run_whose_entry_went_missing(
    client: TestClient, runtime: Runtime, worker: WorkerProc
) -> None:
    run = trigger(client, "echo-background", {}, delay="0.5s")
    runtime.client.zrem(runtime.store.keys.delayed, run["id"])  # say, restored from an older backup
    done = finished(client, run["id"], timeout=30)
    assert done["status"] == "succeeded"
    assert started_late_s(done) >= runtime.settings.retry_grace  # by the reaper's sweep, after its grace


def test_dashboard_shows_delayed_runs(client: TestClient) -> None:
    run = trigger(client, "echo-background", {}, delay="2h")
    assert "starts" in client.get("/runs?status=delayed").text and run["id"] in client.get("/runs").text
    page = client.get(f"/runs/{run['id']}").text
    assert 'id="delayed-note"' in page and "Cancel run" in page
    assert clock.parse_iso(run["run_at"]).strftime("%Y-%m-%d %H:%M:%S UTC") in page
    overview = client.get("/").text
    assert "/runs?status=delayed" in overview


def test_a_dead_workers_place_is_taken_at_once(client: TestClient, runtime: Runtime, start_worker: type) -> None:
    first, second = start_worker(), start_worker()
    wait_for(lambda: runtime.client.zcard(runtime.store.keys.workers) == 2, timeout=30, message="two workers")
    runs = [trigger(client, "echo-background", {"n": n}, delay="1.5s") for n in range(10)]
    first.kill()  # its timer may have been about to promote them: the other worker's timer does
    done = [finished(client, run["id"], timeout=30) for run in runs]
    assert all(run["status"] == "succeeded" and run["attempt"] == 1 for run in done)
    assert max(started_late_s(run) for run in done) < 1.0
    assert second.process is not None and second.process.poll() is None


def test_timers_that_wake_together_queue_each_delayed_message_and_run_once(
    client: TestClient, runtime: Runtime
) -> None:
    """No worker here: two timers (as on two workers) look at the same moment, from threads of their own."""
    from concurrent.futures import ThreadPoolExecutor

    from jobs.worker.timer import Timer

    runs = [trigger(client, "echo-background", {}, run_at="2020-01-01T00:00:00Z")["id"] for _ in range(30)]
    pipe = runtime.client.pipeline()
    messages = [runtime.broker.enqueue_in(pipe, f"r{n}", "t", delay_s=0.5) for n in range(300)]
    pipe.execute()
    timers = [Timer(runtime.store, runtime.broker), Timer(runtime.store, runtime.broker)]
    now = clock.now_ms() + 1000  # all of them due
    with ThreadPoolExecutor(2) as pool:
        nexts = list(pool.map(lambda timer: timer.due(now), timers))
    assert nexts == [None, None]
    queued = [id.decode() for id in runtime.client.lrange(runtime.broker.queue_keys()[0], 0, -1)]
    assert len(queued) == len(set(queued)) == len(messages) + len(runs)
    assert set(messages) <= set(queued)
    assert all(runtime.store.get(run_id).status == "queued" for run_id in runs)


def test_a_delayed_run_that_cannot_be_promoted_does_not_keep_the_timer_awake(
    client: TestClient, runtime: Runtime
) -> None:
    from jobs.worker.timer import Timer

    stuck = trigger(client, "echo-background", {}, run_at="2020-01-01T00:00:00Z")["id"]
    later = trigger(client, "echo-background", {}, delay="1h")
    runtime.client.set(runtime.store.keys.run(stuck), "{not json")
    timer = Timer(runtime.store, runtime.broker)
    due = int(clock.parse_iso(later["run_at"]).timestamp() * 1000)
    assert timer.due(clock.now_ms()) == due  # not the stuck run's time, which would wake the timer at once, forever
    assert runtime.client.zscore(runtime.store.keys.delayed, stuck) is not None  # left for the reaper to report
