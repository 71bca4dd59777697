"""GET /metrics: counters kept in Redis by the worker and outbox, gauges read from Redis at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from jobs.delivery.webhooks import generate_secret
from jobs.lifecycle import new_run
from jobs.settings import Settings
from tests.support.http import WebhookReceiver
from tests.support.procs import wait_for
from tests.support.sites import FUNCTIONS, TOML, make_site


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def site(tmp_path: Path, hook: WebhookReceiver) -> Path:
    toml = TOML + f'\n[backburner.functions."echo-background"]\n  on_success = ["{hook.url}"]\n'
    toml += '\n[functions."echo"]\n  schedule = "*/5 * * * *"\n\n[functions."hello"]\n  schedule = "@daily"\n'
    return make_site(tmp_path / "site", FUNCTIONS, toml)


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    return {
        **env,
        "BACKBURNER_WEBHOOK_SECRET": generate_secret(),
        "BACKBURNER_WEBHOOK_ALLOW": "127.0.0.1",
        "BACKBURNER_OUTBOX_POLL_INTERVAL": "0.05",
    }


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample as ``{(name, sorted labels): value}``, parsed with prometheus_client's own parser."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def finished(client: TestClient, run_id: str) -> dict:
    def done() -> dict | None:
        run = client.get(f"/api/runs/{run_id}").json()
        return run if run["status"] in ("succeeded", "failed", "cancelled") else None

    return wait_for(done, timeout=30, message=f"run {run_id}")


def trigger(client: TestClient, name: str) -> str:
    response = client.post(f"/.netlify/functions/{name}", json={})
    assert response.status_code == 202, response.text
    return response.headers["x-nf-request-id"]


def test_counters_and_histograms_follow_real_runs(client, worker, hook):
    before = scrape(client)
    finished(client, trigger(client, "echo-background"))
    failed = finished(client, trigger(client, "fail-background"))  # 3 attempts: retries after 1 s and 2 s
    assert failed["status"] == "failed"
    wait_for(lambda: hook.requests, message="the webhook delivery")
    attempts_before = value(before, "backburner_attempts_total", function="fail-background", outcome="failed")
    # Attempt counters are flushed by each worker about once a second.
    after = wait_for(
        lambda: (
            (s := scrape(client))
            and value(s, "backburner_webhook_deliveries_total", function="echo-background", outcome="delivered")
            and value(s, "backburner_attempts_total", function="fail-background", outcome="failed")
            == attempts_before + 3
            and s
        ),
        message="the delivery and the attempts to be counted",
    )

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("backburner_runs_total", function="echo-background", status="succeeded") == 1
    assert delta("backburner_runs_total", function="fail-background", status="failed") == 1
    assert delta("backburner_attempts_total", function="fail-background", outcome="failed") == 3
    assert delta("backburner_attempts_total", function="echo-background", outcome="succeeded") == 1
    assert delta("backburner_retries_total", function="fail-background") == 2
    assert delta("backburner_attempt_duration_seconds_count", function="fail-background") == 3
    assert delta("backburner_attempt_duration_seconds_bucket", function="fail-background", le="+Inf") == 3
    assert delta("backburner_attempt_duration_seconds_sum", function="echo-background") > 0
    assert value(after, "backburner_webhook_deliveries_total", function="echo-background", outcome="delivered") == 1
    assert value(after, "backburner_workers") == 1
    assert ("backburner_queue_depth", (("queue", "ready"),)) in after
    assert ("backburner_webhook_outbox_pending", ()) in after


def test_gauges_show_queued_and_cancelled_runs_without_a_worker(client, runtime):
    function = runtime.site.get("sleepy-background")
    runs = [runtime.store.create(new_run(function, "api"), {})[0] for _ in range(3)]
    samples = scrape(client)
    assert value(samples, "backburner_runs_active", function="sleepy-background", status="queued") == 3
    assert value(samples, "backburner_queue_depth", queue="ready") == 3
    runtime.lifecycle.cancel(runs[0].id)  # cancelled while queued: counted once, by the API process
    samples = scrape(client)
    assert value(samples, "backburner_runs_active", function="sleepy-background", status="queued") == 2
    assert value(samples, "backburner_runs_total", function="sleepy-background", status="cancelled") == 1
    assert value(samples, "backburner_workers") == 0


def test_metrics_need_the_token_outside_dev_unless_public(settings: Settings):
    from api.app import create_app

    token = "metrics-test-token-1234567890"
    with TestClient(create_app(settings.model_copy(update={"dev": False, "api_token": token}))) as locked:
        assert locked.get("/metrics").status_code == 401
        assert locked.get("/metrics", headers={"authorization": f"Bearer {token}"}).status_code == 200
    public = settings.model_copy(update={"dev": False, "api_token": token, "metrics_public": True})
    with TestClient(create_app(public)) as open_client:
        assert open_client.get("/metrics").status_code == 200
        assert open_client.get("/api/runs").status_code == 401  # only /metrics is opened


def test_scheduler_lag_and_pause_state_come_from_redis(client, runtime):
    from datetime import timedelta

    from jobs import clock
    from jobs.schedules.state import ScheduleState

    state = ScheduleState(runtime.client, runtime.store.keys)
    now = clock.now()
    state.start("echo", now - timedelta(minutes=30))  # nobody fired it for half an hour
    state.start("hello", now)
    state.pause("hello")
    samples = scrape(client)
    lag = value(samples, "backburner_schedule_lag_seconds", schedule="echo", function="echo")
    assert 20 * 60 <= lag <= 30 * 60  # the oldest due tick is 25-30 minutes old
    paused_lag = ("backburner_schedule_lag_seconds", (("function", "hello"), ("schedule", "hello")))
    assert paused_lag not in samples  # paused: no lag
    assert value(samples, "backburner_schedule_paused", schedule="hello", function="hello") == 1
    assert value(samples, "backburner_schedule_paused", schedule="echo", function="echo") == 0
    state.advance("echo", now)
    assert value(scrape(client), "backburner_schedule_lag_seconds", schedule="echo", function="echo") == 0
