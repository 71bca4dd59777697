"""The outbox in-process, against the real Redis: what gets queued when, the claim lease, giving up, the
signing secret; and the destinations check at start-up."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from standardwebhooks import Webhook

from jobs import clock
from jobs.delivery.destinations import check_secret
from jobs.delivery.outbox import Deliverer, Entry, Outbox, _note, enqueue
from jobs.delivery.webhooks import next_delay
from jobs.errors import ConfigError
from jobs.lifecycle import new_run
from jobs.runs import Result
from jobs.runtime import Runtime
from jobs.wiring import open_runtime
from jobs.worker import WorkerProcess
from tests.support.attempts import finish as record
from tests.support.http import WebhookReceiver
from tests.support.partition import Relay
from tests.support.procs import wait_for
from tests.support.redis import RedisServer

FAIL = Result("error", error={"type": "ValueError", "message": "no"})


def finish(runtime, function: str, result: Result) -> str:
    """Create a run and record ``result`` for each of its attempts until it is final (no worker)."""
    run, _ = runtime.store.create(new_run(runtime.site.get(function), "api"), {})
    while not (current := runtime.store.get(run.id)).terminal:
        claimed = runtime.lifecycle.claim(run.id, current.token, "w")
        assert claimed is not None
        record(runtime, run.id, claimed[0].token, result)
    return run.id


def pending(runtime) -> list[str]:
    return sorted(i.decode() for i in runtime.client.zrange(runtime.store.keys.outbox_due, 0, -1))


def delivered_once(runtime, run_id: str, hook: WebhookReceiver) -> None:
    """The run's one delivery was sent once and recorded once, as delivered on its first attempt."""
    [record] = runtime.store.get(run_id).deliveries
    assert (record["attempt"], record["outcome"]) == (1, "delivered")
    assert len(hook.requests) == 1


@contextmanager
def delivering(settings, runtime, owner: str = "t") -> Iterator[Deliverer]:
    """A Deliverer on its own thread, as in a worker: it claims what is due every poll interval and sends it."""
    deliverer = Deliverer(settings, runtime.store, runtime.sites.lookup, owner).start()
    try:
        yield deliverer
    finally:
        deliverer.stop()


@pytest.fixture
def private(settings, tmp_path) -> Iterator[tuple[RedisServer, Runtime]]:
    """A Redis of the test's own (the test stops and starts it), and a runtime on it."""
    with RedisServer(tmp_path / "redis") as server:
        runtime = open_runtime(settings.model_copy(update={"redis_url": server.url}))
        try:
            yield server, runtime
        finally:
            runtime.close()


def claimed_retry(runtime, settings) -> tuple[str, Deliverer, Entry, dict[str, Any]]:
    """A finished run, a Deliverer holding the claim of its delivery, the entry, and a failed attempt's record."""
    run_id = finish(runtime, "notify-background", Result("ok", value={}))
    deliverer = Deliverer(settings, runtime.store, runtime.sites.lookup, "t")
    [entry_id] = deliverer.outbox.claim(1, 30, deliverer.token)
    entry = deliverer.outbox.load(entry_id)
    assert entry is not None
    record = {**_note(entry, 1, "retrying", "HTTP 500"), "next_attempt_at": "2026-03-02T10:00:00.000Z"}
    return run_id, deliverer, entry, record


def claimed_by_b(runtime, entry_id: str) -> float:
    """The claim on ``entry_id`` runs out (it is due now) and worker B claims it; returns B's due time."""
    keys = runtime.store.keys
    runtime.client.zadd(keys.outbox_due, {entry_id: clock.now_ms()})
    assert Outbox(runtime.client, keys).claim(1, 30, "B") == [entry_id]
    return runtime.client.zscore(keys.outbox_due, entry_id)


def held_by_b(runtime, entry_id: str, due: float) -> bool:
    """B's claim stands: the entry is B's, and its due time is still the one B's claim gave it."""
    keys = runtime.store.keys
    fields = runtime.client.hget(keys.outbox_entry(entry_id), "claim"), runtime.client.zscore(keys.outbox_due, entry_id)
    return fields == (b"B", due)


def test_the_final_transaction_queues_one_entry_per_url_of_the_outcome(runtime):
    ok = finish(runtime, "notify-background", Result("ok", value={}))
    assert pending(runtime) == [f"msg_{ok}_0"]
    failed = finish(runtime, "doomed-background", FAIL)  # 3 attempts; on_failure once, on_success never
    assert pending(runtime) == sorted([f"msg_{ok}_0", f"msg_{failed}_0"])
    entry = Outbox(runtime.client, runtime.store.keys).load(f"msg_{failed}_0")
    assert entry is not None and entry.event == "run.failed" and entry.attempts == 0
    assert entry.run["status"] == "failed" and entry.run["attempt"] == 3
    run, _ = runtime.store.create(new_run(runtime.site.get("notify-background"), "api"), {})
    runtime.lifecycle.cancel(run.id)
    assert len(pending(runtime)) == 2  # cancelled runs notify nobody


def test_a_claim_is_exclusive_until_its_lease_runs_out(runtime):
    keys = runtime.store.keys
    with runtime.client.pipeline() as pipe:
        enqueue(pipe, keys, Entry("msg_x_0", "x", "notify-background", "http://h/", "run.succeeded", "t", {}))
        pipe.execute()
    a, b = Outbox(runtime.client, keys), Outbox(runtime.client, keys)
    assert a.claim(10, lease_s=0.3, token="A") == ["msg_x_0"]
    assert b.claim(10, lease_s=0.3, token="B") == []  # A holds it: no second sender
    assert a.owns("msg_x_0", "A") and not b.owns("msg_x_0", "B")
    # A "crashes"; once the lease is over the delivery comes back to someone else.
    assert wait_for(lambda: b.claim(10, lease_s=30, token="B"), timeout=5) == ["msg_x_0"]
    assert b.owns("msg_x_0", "B") and not a.owns("msg_x_0", "A")


def test_next_delay_follows_a_configured_schedule():
    schedule = (1.0, 2.0)
    assert [next_delay(n, None, schedule) for n in (1, 2, 3)] == [1.0, 2.0, None]
    assert next_delay(1, 7.0, schedule) == 7.0  # a longer Retry-After wins
    assert next_delay(1, 99_999.0, schedule) == 3600.0  # but is capped


def test_gives_up_when_the_schedule_is_exhausted(runtime, settings, hook: WebhookReceiver):
    hook.stop()
    quick = settings.model_copy(update={"webhook_retries": "0s,0s"})
    run_id = finish(runtime, "notify-background", Result("ok", value={}))
    with delivering(quick, runtime):
        wait_for(lambda: not pending(runtime), message="the attempts to run out")
    records = runtime.store.get(run_id).deliveries
    assert [(r["attempt"], r["outcome"]) for r in records] == [(1, "retrying"), (2, "retrying"), (3, "gave_up")]
    assert records[-1]["next_attempt_at"] is None
    assert pending(runtime) == []


def test_the_event_carries_the_run_as_the_api_shows_it_result_size_included(runtime, settings, hook: WebhookReceiver):
    run_id = finish(runtime, "notify-background", Result("ok", value={"big": "é" * 100}))
    with delivering(settings, runtime):
        [request] = hook.wait_for(1)
    data = Webhook(settings.webhook_secret).verify(request.body.decode(), request.headers)["data"]
    shown = runtime.store.get(run_id).public()
    assert data["result_size"] == shown["result_size"] == len('{"big":""}') + 200  # é is 2 bytes of UTF-8
    assert data["result"] == {"big": "é" * 100}


def test_a_run_removed_meanwhile_still_gets_its_event_sent(runtime, settings, hook: WebhookReceiver):
    run_id = finish(runtime, "notify-background", Result("ok", value={"n": 1}))
    runtime.client.delete(*runtime.store.keys.run_keys(run_id))
    with delivering(settings, runtime):
        wait_for(lambda: not pending(runtime), message="the delivery to be done")
    [request] = hook.wait_for(1)
    assert Webhook(settings.webhook_secret).verify(request.body.decode(), request.headers)["data"]["id"] == run_id
    assert pending(runtime) == []


def test_an_attempt_made_while_redis_went_away_is_recorded_once_it_is_back_and_not_made_again(
    settings, private, hook: WebhookReceiver, caplog
):
    """Redis stops while the receiver holds its answer: the sent attempt is recorded when Redis is back (before,
    its claim came due after the lease and the webhook went out a second time)."""
    server, runtime = private
    answer = threading.Event()
    hook.configure(hold=answer)
    run_id = finish(runtime, "notify-background", Result("ok", value={}))
    with caplog.at_level(logging.WARNING, logger="backburner.outbox"), delivering(settings, runtime):
        hook.wait_for(1)
        server.stop()
        answer.set()
        wait_for(lambda: "recording it waits for Redis" in caplog.text, message="a record to find no Redis")
        server.start()
        wait_for(lambda: not pending(runtime), message="the attempt to be recorded")
    delivered_once(runtime, run_id, hook)
    assert not runtime.client.exists(runtime.store.keys.outbox_entry(f"msg_{run_id}_0"))


def test_a_backlog_is_sent_as_senders_free_not_once_a_poll(settings, runtime, hook: WebhookReceiver):
    """Eight deliveries due, two senders, a poll a minute: each sender that frees claims the next at once, so all
    eight go out without waiting for a poll (before: two a poll, about 4 a second with the default settings)."""
    slow_polls = settings.model_copy(update={"outbox_poll_interval": 60.0, "webhook_concurrency": 2})
    for _ in range(8):
        finish(runtime, "notify-background", Result("ok", value={}))
    with delivering(slow_polls, runtime):
        hook.wait_for(8, timeout=30)
    wait_for(lambda: not pending(runtime), message="every delivery to be recorded")


def test_a_delivery_still_being_sent_when_its_claim_runs_out_is_not_sent_again_beside_itself(
    settings, runtime, hook: WebhookReceiver
):
    """A receiver slower than the claim's lease: the entry comes due again while its attempt is in flight, and
    the worker sending it does not send it a second time at once (same webhook-id, twice in flight)."""
    answer = threading.Event()
    hook.configure(hold=answer)
    patient = settings.model_copy(update={"webhook_timeout": 30.0})  # the receiver holds its answer meanwhile
    deliverer = Deliverer(patient, runtime.store, runtime.sites.lookup, "t")  # pumped by the test only
    deliverer.lease_s = 0.5
    try:
        run_id = finish(runtime, "notify-background", Result("ok", value={}))
        assert deliverer.pump() == 1
        hook.wait_for(1)
        claimed_at = time.monotonic()
        wait_for(lambda: time.monotonic() - claimed_at > 1.0, message="the claim to run out")
        assert deliverer.pump() == 0  # due again, claimed, not sent: it is in hand
        answer.set()
        wait_for(lambda: not pending(runtime), message="the attempt to be recorded")
        delivered_once(runtime, run_id, hook)
    finally:
        deliverer.stop()


def test_an_attempt_whose_claim_ran_out_while_redis_was_away_is_not_made_again_by_its_worker(
    settings, private, hook: WebhookReceiver, caplog
):
    """Redis stays away longer than the claim's lease: when it is back the entry is due again, and the worker
    that made the attempt claims it but does not send it; the waiting record settles it (before: sent twice)."""
    server, runtime = private
    answer = threading.Event()
    hook.configure(hold=answer)
    deliverer = Deliverer(settings, runtime.store, runtime.sites.lookup, "t")  # pumped by the test only
    deliverer.lease_s = 1.0
    try:
        run_id = finish(runtime, "notify-background", Result("ok", value={}))
        with caplog.at_level(logging.WARNING, logger="backburner.outbox"):
            assert deliverer.pump() == 1
            hook.wait_for(1)
            server.stop()
            down_at = time.monotonic()
            answer.set()
            wait_for(lambda: "recording it waits for Redis" in caplog.text, message="a record to find no Redis")
            # The outage itself is under test: it must outlast the claim's lease.
            wait_for(lambda: time.monotonic() - down_at > 1.5, message="the outage to outlast the lease")
            server.start()
            assert deliverer.pump() == 0  # due again (the lease ran out), claimed, not sent
            wait_for(lambda: not pending(runtime), message="the attempt to be recorded")
        delivered_once(runtime, run_id, hook)
    finally:
        deliverer.stop()


def test_a_delivered_attempt_recorded_after_another_worker_sent_it_again_settles_the_delivery(
    runtime, settings, redis_server, hook: WebhookReceiver, caplog
):
    """Worker A, reaching Redis through a relay, loses it after sending an attempt (delivered); its claim runs
    out, and worker B sends the attempt again and gets a 503. Once A reaches Redis again its record ends the
    delivery (before: B's retries went on for hours)."""
    answer = threading.Event()
    hook.configure(hold=answer)
    relay = Relay(redis_server.port).__enter__()
    far = open_runtime(settings.model_copy(update={"redis_url": relay.through(settings.redis_url)}))
    a = Deliverer(settings, far.store, far.sites.lookup, "a")  # both pumped by the test only
    b = Deliverer(settings, runtime.store, runtime.sites.lookup, "b")
    a.lease_s = 1.0
    try:
        run_id = finish(runtime, "notify-background", Result("ok", value={}))
        with caplog.at_level(logging.WARNING, logger="backburner.outbox"):
            assert a.pump() == 1
            claimed_at = time.monotonic()
            hook.wait_for(1)
            relay.__exit__()  # A's connections are closed, new ones refused
            answer.set()
            wait_for(lambda: "recording it waits for Redis" in caplog.text, message="A's record to find no Redis")
            hook.configure(status=503)  # A's answer (200) is in: the one B gets fails
            wait_for(lambda: time.monotonic() - claimed_at > 1.5, message="A's claim to run out")
            assert b.pump() == 1
            wait_for(lambda: runtime.store.get(run_id).deliveries, message="B's attempt to be recorded")
            assert pending(runtime)  # B's retry is due later
            relay = Relay(redis_server.port, port=relay.port).__enter__()
            wait_for(lambda: not pending(runtime), message="A's record to end the delivery")
        outcomes = [record["outcome"] for record in runtime.store.get(run_id).deliveries]
        assert outcomes == ["retrying", "delivered"] and len(hook.requests) == 2
    finally:
        a.stop()
        b.stop()
        far.close()
        relay.__exit__()


def test_a_retry_recorded_again_after_its_worker_claimed_it_anew_keeps_its_due_time(runtime, settings):
    """A "retrying" record lands but its answer is lost; the entry comes due and its worker claims it again (the
    claim pushes it a lease ahead) without sending it, then tries the record again: the retry stays due now."""
    run_id, deliverer, entry, record = claimed_retry(runtime, settings)
    entry_id = entry.id
    due_ms = clock.now_ms()
    deliverer._record(entry, record, 1, due_ms=due_ms, gone=False)  # landed; its answer was lost
    assert deliverer.outbox.claim(1, 30, deliverer.token) == [entry_id]  # due, claimed anew: now 30 s ahead
    deliverer._record(entry, record, 1, due_ms=due_ms, gone=False)  # the record, tried again
    assert runtime.client.zscore(runtime.store.keys.outbox_due, entry_id) == due_ms
    assert runtime.store.get(run_id).deliveries == [record]


def test_a_retry_recorded_just_after_another_worker_claimed_its_delivery_leaves_that_claim(
    runtime, settings, monkeypatch
):
    """A's claim ran out (its record waited for Redis) and B claims the delivery in the instant between A looking
    at its claim and A's "retrying" record landing. The record must not reschedule B's claim: B sends the
    attempt, and a reschedule would bring it back for one more send."""
    run_id, a, entry, record = claimed_retry(runtime, settings)
    b_due = claimed_by_b(runtime, entry.id)  # A's lease ran out
    monkeypatch.setattr(Outbox, "owns", lambda self, entry_id, token: True)  # what A read just before B claimed
    a._record(entry, record, 1, due_ms=clock.now_ms() + 1000, gone=False)
    assert runtime.store.get(run_id).deliveries == [record]  # A's attempt is recorded
    assert held_by_b(runtime, entry.id, b_due)


def test_a_retry_of_a_run_removed_meanwhile_is_settled_only_under_its_claim(runtime, settings):
    """Retention removed the run: the retry is still rescheduled while its worker holds the claim, and left to
    the worker that claimed it since, if another did."""
    run_id, a, entry, record = claimed_retry(runtime, settings)
    keys = runtime.store.keys
    runtime.client.delete(*keys.run_keys(run_id))
    due = clock.now_ms() + 1000
    a._record(entry, record, 1, due_ms=due, gone=False)
    assert runtime.client.zscore(keys.outbox_due, entry.id) == due
    assert runtime.client.hget(keys.outbox_entry(entry.id), "claim") == b""
    b_due = claimed_by_b(runtime, entry.id)
    a._record(entry, record, 2, due_ms=clock.now_ms(), gone=False)
    assert held_by_b(runtime, entry.id, b_due)


def test_an_outage_is_logged_once_not_at_every_poll(settings, private, caplog):
    server, runtime = private
    quick = settings.model_copy(update={"outbox_poll_interval": 0.02})
    with caplog.at_level(logging.INFO, logger="backburner.outbox"), delivering(quick, runtime):
        server.stop()
        down_at = time.monotonic()
        wait_for(lambda: "Redis unavailable" in caplog.text, message="the outage to be noticed")
        # What is under test is the polls made during the outage: it must last a few of them.
        wait_for(lambda: time.monotonic() - down_at > 0.5, message="some 25 polls")
        server.start()
        wait_for(lambda: "outbox: Redis answers again" in caplog.text, message="the end of the outage")
    assert caplog.text.count("Redis unavailable") == 1


def test_a_record_tried_again_after_its_answer_was_lost_is_kept_once(runtime, settings):
    """A record whose reply was lost (a timeout after Redis ran it) is tried again: it must not land twice."""
    run_id, deliverer, entry, record = claimed_retry(runtime, settings)
    for _ in range(2):
        deliverer._record(entry, record, 1, due_ms=clock.now_ms() + 60_000, gone=False)
    assert runtime.store.get(run_id).deliveries == [record]
    assert deliverer.outbox.load(entry.id).attempts == 1  # type: ignore[union-attr]


def test_dev_generates_one_secret_keeps_it_in_redis_and_never_logs_it(runtime, settings, hook, caplog):
    dev = settings.model_copy(update={"webhook_secret": None, "dev": True})
    run_id = finish(runtime, "notify-background", Result("ok", value={}))
    with caplog.at_level(logging.WARNING, logger="backburner.outbox"), delivering(dev, runtime, "a"):
        wait_for(lambda: not pending(runtime), message="the delivery to be done")
    stored = runtime.client.get(runtime.store.keys.webhook_secret).decode()
    assert stored.startswith("whsec_") and Deliverer(dev, runtime.store, runtime.sites.lookup, "b").secret() == stored
    assert "generated a webhook signing secret" in caplog.text and stored not in caplog.text
    [request] = hook.wait_for(1)
    assert Webhook(stored).verify(request.body.decode(), request.headers)["data"]["id"] == run_id


def test_outside_dev_webhooks_without_a_secret_stop_the_worker_start(runtime, settings):
    strict = settings.model_copy(update={"webhook_secret": None, "dev": False})
    with pytest.raises(ConfigError) as caught:
        check_secret(strict, runtime.site)
    message = caught.value.message
    assert "BACKBURNER_WEBHOOK_SECRET is not set" in message and "notify-background" in message
    assert "export BACKBURNER_WEBHOOK_SECRET=whsec_" in message
    with pytest.raises(ConfigError):
        WorkerProcess(strict).start()
    check_secret(settings.model_copy(update={"dev": False}), runtime.site)  # a secret is enough


def test_a_malformed_secret_stops_the_worker_start(runtime, settings):
    malformed = settings.model_copy(update={"webhook_secret": "whsec_a"})  # not base64
    with pytest.raises(ConfigError, match="expected 'whsec_' followed by base64"):
        check_secret(malformed, runtime.site)
    with pytest.raises(ConfigError, match="whsec_"):
        WorkerProcess(malformed).start()
