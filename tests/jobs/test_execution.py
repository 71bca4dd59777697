"""Runs end to end: API -> Redis -> real worker process -> child process -> run record."""

import json
import time
from datetime import timedelta

import dramatiq
import pytest

from jobs import clock
from jobs.hooks import RunHook
from jobs.lifecycle import new_run
from jobs.runs import Result
from tests.support.attempts import finish
from tests.support.procs import wait_for


def finished(client, run_id, timeout=30.0):
    def done():
        run = client.get(f"/api/runs/{run_id}").json()
        return run if run["status"] in ("succeeded", "failed", "cancelled") else None

    return wait_for(done, timeout=timeout, message=f"run {run_id} to finish")


def trigger(client, name, payload=None):
    response = client.post(f"/.netlify/functions/{name}", json=payload or {})
    assert response.status_code == 202, response.text
    return response.headers["x-nf-request-id"]


def test_background_run_succeeds_with_result_attempts_and_logs(client, worker):
    run_id = trigger(client, "echo-background", {"n": 3})
    run = finished(client, run_id)
    assert run["status"] == "succeeded"
    assert run["result"]["event"]["body"] == '{"n":3}'
    assert run["result"]["attempt"] == 1 and run["result"]["run_id"] == run_id
    assert 0 < run["result"]["remaining_ms"] <= 900_000
    assert [a["outcome"] for a in run["attempts"]] == ["succeeded"]
    assert run["started_at"] and run["finished_at"] and run["error"] is None
    lines = client.get(f"/api/runs/{run_id}/logs").json()["lines"]
    assert [line["line"] for line in lines] == ["echoing"]


def test_async_handler_runs(client, worker):
    assert finished(client, trigger(client, "async-background"))["result"] == {"async": True}


#: How late a retry may start: its message is queued by a timer woken at its due time, and the idle worker is
#: nudged at once (no polling), so what is left is a few round trips and process scheduling.
RETRY_TOLERANCE_S = 0.1


def gaps(run):
    """Seconds from each attempt's end to the next one's start."""
    attempts = run["attempts"]
    return [
        (clock.parse_iso(following["started_at"]) - clock.parse_iso(previous["finished_at"])).total_seconds()
        for previous, following in zip(attempts, attempts[1:], strict=False)
    ]


def test_retries_happen_after_the_exact_delays_then_succeed(client, worker):
    run = finished(client, trigger(client, "flaky-background"))
    assert run["status"] == "succeeded" and run["result"] == {"ok_on": 3}
    assert [a["outcome"] for a in run["attempts"]] == ["failed", "failed", "succeeded"]
    for delay, gap in zip([1.0, 2.0], gaps(run), strict=True):
        assert delay <= gap < delay + RETRY_TOLERANCE_S, (delay, gap)  # never early, and exact


def test_terminal_failure_records_type_message_and_traceback(client, worker):
    run = finished(client, trigger(client, "fail-background"))
    assert run["status"] == "failed"
    assert run["attempt"] == 3 and len(run["attempts"]) == 3
    assert run["error"]["type"] == "ValueError"
    assert run["error"]["message"] == "boom on attempt 3"
    assert "fail-background.py" in run["error"]["traceback"]
    assert [a["error"]["message"] for a in run["attempts"]] == [f"boom on attempt {n}" for n in (1, 2, 3)]
    assert run["next_attempt_at"] is None
    for delay, gap in zip([1.0, 2.0], gaps(run), strict=True):
        assert delay <= gap < delay + RETRY_TOLERANCE_S, (delay, gap)
    # Each attempt's traceback is in the run's log too (`logs --follow`, the dashboard), as in a Lambda's log.
    lines = client.get(f"/api/runs/{run['id']}/logs").json()["lines"]
    ends = [(line["attempt"], line["level"], line["line"]) for line in lines if line["line"].startswith("ValueError")]
    assert ends == [(n, "ERROR", f"ValueError: boom on attempt {n}") for n in (1, 2, 3)], lines
    assert all(line["level"] == "ERROR" for line in lines) and lines[0]["line"].startswith("Traceback"), lines


def test_default_schedule_is_60s_then_120s(client, worker):
    run_id = trigger(client, "default-retries-background")
    run = wait_for(
        lambda: (r := client.get(f"/api/runs/{run_id}").json())["status"] == "retrying" and r,
        message="first failure",
    )
    finished_at = clock.parse_iso(run["attempts"][0]["finished_at"])
    assert clock.parse_iso(run["next_attempt_at"]) - finished_at == timedelta(seconds=60)
    assert run["retry_delays_s"] == [60, 120]
    cancelled = client.post(f"/api/runs/{run_id}/cancel").json()
    # A retrying run, cancelled, says so as a running one would; its attempt keeps its own error.
    assert cancelled["status"] == "cancelled" and cancelled["error"]["type"] == "Cancelled"
    assert cancelled["attempts"][0]["error"] == run["attempts"][0]["error"] != cancelled["error"]


def test_a_handler_can_fail_for_good_or_ask_for_a_later_retry(client, worker):
    permanent = finished(client, trigger(client, "permanent-background"))
    assert permanent["status"] == "failed" and permanent["max_attempts"] == 3
    assert [a["outcome"] for a in permanent["attempts"]] == ["failed"]  # no retries spent on it
    assert permanent["error"]["type"] == "NonRetriable" and permanent["error"]["message"] == "cannot work, attempt 1"

    later = finished(client, trigger(client, "later-background"))
    assert later["status"] == "succeeded" and later["result"] == {"attempt": 2}
    first, second = later["attempts"]
    assert first["error"]["type"] == "RetryAfter" and first["error"]["message"] == "rate limited"
    [gap] = gaps(later)
    assert 1.5 <= gap < 1.5 + RETRY_TOLERANCE_S, gap  # the handler's 1.5 s, not the function's 0.1 s


def test_retry_after_on_the_last_attempt_fails_the_run(runtime):
    run, _ = runtime.store.create(new_run(runtime.site.get("later-background"), "api"), {})
    asked = Result("error", error={"type": "RetryAfter", "message": "later", "retry_after_s": 30.0})
    for n in range(3):
        current = runtime.store.get(run.id)
        runtime.lifecycle.claim(run.id, current.token, "w")
        after = finish(runtime, run.id, current.token, asked)
        if n < 2:
            gap = clock.parse_iso(after.next_attempt_at) - clock.parse_iso(after.attempts[-1].finished_at)
            assert after.status == "retrying" and gap == timedelta(seconds=30)
    assert after.status == "failed" and after.next_attempt_at is None


def test_concurrency_limits_how_many_runs_of_a_function_run_at_once(client, start_worker, runtime, tmp_path):
    start_worker(threads=4)  # room for all three at once, were it not for concurrency = 1
    wait_for(lambda: runtime.client.zcard(runtime.store.keys.workers), timeout=30, message="worker heartbeat")
    runs = [trigger(client, "single-background", {"dir": str(tmp_path)}) for _ in range(3)]
    for run_id in runs:
        assert finished(client, run_id)["status"] == "succeeded"
    spans = sorted(json.loads((tmp_path / run_id).read_text()) for run_id in runs)
    for (_, ended), (started, _) in zip(spans, spans[1:], strict=False):
        assert started >= ended, spans  # never two at once
    assert runtime.client.zcard(runtime.store.keys.concurrency("single-background")) == 0


def test_a_run_without_a_free_slot_waits_and_the_write_that_frees_the_slot_wakes_it(runtime):
    from jobs.store import NoSlot

    function = runtime.site.get("single-background")
    first, second, gone = (runtime.store.create(new_run(function, "api"), {})[0] for _ in range(3))
    limit = {"single-background": 1}.get
    queue, delayed = runtime.broker.queue_keys()[0], runtime.broker.queue_keys(delayed=True)[1]
    assert runtime.lifecycle.claim(first.id, first.token, "w", concurrency=limit) is not None
    for run in (gone, second):
        with pytest.raises(NoSlot):
            runtime.lifecycle.claim(run.id, run.token, "w", concurrency=limit)
        assert runtime.store.get(run.id).status == "queued"
    runtime.lifecycle.wait_for_slot(gone.id, gone.token, 30.0)
    runtime.lifecycle.cancel(gone.id)  # leaves a stale entry in the waiting list
    waiting = runtime.lifecycle.wait_for_slot(second.id, second.token, 30.0)
    assert waiting.status == "queued" and waiting.token != second.token
    assert runtime.client.hexists(delayed, waiting.message_id)  # the fallback, 30 s out
    waiting_list = runtime.store.keys.waiting("single-background")
    assert runtime.client.lrange(waiting_list, 0, -1) == [gone.id.encode(), second.id.encode()]
    slots = runtime.store.keys.concurrency("single-background")
    assert runtime.client.zrange(slots, 0, -1) == [first.id.encode()]
    runtime.client.delete(queue)  # from here on, only new messages

    runtime.lifecycle.lose(first.id, "w", "gone")  # a lost attempt frees its slot, and wakes a waiting run
    assert runtime.client.zcard(slots) == 0 and runtime.client.llen(waiting_list) == 0
    queued = [_message_args(runtime, m.decode()) for m in runtime.client.lrange(queue, 0, -1)]
    assert [a[0] for a in queued] == [first.id, second.id]  # first's own retry, then the wake-up
    args = queued[1]
    assert args == [second.id, waiting.token]  # the cancelled run was passed over
    assert runtime.lifecycle.claim(*args, "w", concurrency=limit) is not None
    assert runtime.client.zrange(slots, 0, -1) == [second.id.encode()]
    finish(runtime, second.id, waiting.token, Result("ok"))
    assert runtime.client.zcard(slots) == 0


def test_default_schedule_next_attempts_are_60s_and_120s_after_each_failure(runtime):
    """Both default delays, proven on the recorded next-attempt times (no waiting)."""
    run, _ = runtime.store.create(new_run(runtime.site.get("default-retries-background"), "http"), {})
    failure = Result("error", error={"type": "RuntimeError", "message": "x"})
    gaps = []
    for _ in range(2):
        current = runtime.store.get(run.id)
        runtime.lifecycle.claim(run.id, current.token, "w")
        after = finish(runtime, run.id, current.token, failure)
        assert after is not None and after.status == "retrying"
        finished = clock.parse_iso(after.attempts[-1].finished_at)
        gaps.append(clock.parse_iso(after.next_attempt_at) - finished)
        # The message for the next attempt is on Dramatiq's delay queue, due exactly then.
        assert runtime.client.hexists(runtime.broker.queue_keys(delayed=True)[1], after.message_id)
    assert gaps == [timedelta(seconds=60), timedelta(seconds=120)]
    current = runtime.store.get(run.id)
    runtime.lifecycle.claim(run.id, current.token, "w")
    assert finish(runtime, run.id, current.token, failure).status == "failed"


def test_default_retry_delays_come_from_the_function_kind(runtime):
    function = runtime.site.get("echo-background")
    plain = type(function)(**{**function.__dict__, "retry_delays_s": None})
    assert plain.limits("http").retry_delays_s == (60.0, 120.0)
    assert plain.limits("http").time_limit_s == 900.0


@pytest.mark.parametrize("name", ["sleepy-background", "busy-background"])
def test_hard_time_limit_in_the_worker(client, worker, name):
    run = finished(client, trigger(client, name))
    assert run["status"] == "failed"
    assert run["error"]["type"] == "TimeLimitExceeded"
    assert [a["outcome"] for a in run["attempts"]] == ["timeout"]
    took = clock.parse_iso(run["finished_at"]) - clock.parse_iso(run["started_at"])
    assert timedelta(seconds=1) <= took < timedelta(seconds=4)
    # The child could not say why it ended; its worker's record puts the line in the run's log.
    assert logged(client, run["id"])[-1] == (1, "ERROR", f"TimeLimitExceeded: {run['error']['message']}")


def logged(client, run_id):
    """A run's log lines: (attempt, level, text)."""
    return [(e["attempt"], e["level"], e["line"]) for e in client.get(f"/api/runs/{run_id}/logs").json()["lines"]]


def test_child_crash_fails_the_attempt_and_the_worker_carries_on(client, worker):
    run = finished(client, trigger(client, "crash-background"))
    assert run["status"] == "succeeded" and run["result"] == {"recovered_on": 2}
    assert run["attempts"][0]["outcome"] == "crashed"
    assert "exit code 7" in run["attempts"][0]["error"]["message"]
    assert logged(client, run["id"]) == [
        (1, "ERROR", "ProcessCrashed: crash-background's process died with exit code 7")
    ]
    assert worker.process.poll() is None
    [gap] = gaps(run)
    assert 0.2 <= gap < 0.2 + RETRY_TOLERANCE_S, gap  # a crash's retry is as exact as any other


def test_cancel_a_running_run_stops_it_without_retry(client, worker, tmp_path):
    run_id = trigger(client, "wait-background", {"until": str(tmp_path / "never")})
    wait_for(lambda: (tmp_path / "never.started").exists(), message="attempt to start")
    asked = time.monotonic()
    client.post(f"/api/runs/{run_id}/cancel")
    run = finished(client, run_id)
    assert time.monotonic() - asked < 2.0
    assert run["status"] == "cancelled"
    assert [a["outcome"] for a in run["attempts"]] == ["cancelled"]
    assert logged(client, run_id)[-1] == (1, "ERROR", "Cancelled: the run was cancelled")


def test_cancelling_a_parent_cancels_the_runs_it_started(client, start_worker, runtime, tmp_path):
    """A running parent and its two running children (context.spawn) all stop, none is retried."""
    start_worker(threads=4)
    wait_for(lambda: runtime.client.zcard(runtime.store.keys.workers), timeout=30, message="worker heartbeat")
    base = tmp_path / "never"
    parent_id = trigger(client, "spawner-background", {"until": str(base)})
    spawned = tmp_path / "never.spawned"
    children = wait_for(lambda: spawned.exists() and json.loads(spawned.read_text()), message="the children")
    wait_for(lambda: all((tmp_path / f"never-{n}.started").exists() for n in range(2)), message="children running")
    assert client.post(f"/api/runs/{parent_id}/cancel").status_code == 200
    for run_id in [parent_id, *children]:
        run = finished(client, run_id)
        assert run["status"] == "cancelled", run_id
        assert [a["outcome"] for a in run["attempts"]] == ["cancelled"]


def test_cancel_reaches_queued_grandchildren_and_leaves_finished_children_alone(runtime):
    function = runtime.site.get("echo-background")
    parent, child, done, grandchild = (runtime.store.create(new_run(function, "api"), {})[0] for _ in range(4))
    runtime.client.sadd(runtime.store.keys.children(parent.id), child.id, done.id, "01NOTCREATEDYET0000000000A")
    runtime.client.sadd(runtime.store.keys.children(child.id), grandchild.id)
    runtime.lifecycle.claim(done.id, done.token, "w")
    finish(runtime, done.id, done.token, Result("ok"))
    assert runtime.lifecycle.cancel(parent.id).status == "cancelled"
    statuses = {run_id: runtime.store.get(run_id).status for run_id in (child.id, done.id, grandchild.id)}
    assert statuses == {child.id: "cancelled", done.id: "succeeded", grandchild.id: "cancelled"}


def test_children_spawned_after_the_parent_was_cancelled_are_cancelled_too(runtime):
    """The race the cancel cannot see: the parent is cancelled while it is still spawning."""
    from jobs.execution.context import Context
    from jobs.execution.task import attempt_context

    parent, _ = runtime.store.create(new_run(runtime.site.get("spawner-background"), "api"), {})
    runtime.lifecycle.claim(parent.id, parent.token, "w")
    runtime.lifecycle.cancel(parent.id)  # running: only asked to stop, and it has no children yet
    info = attempt_context("spawner-background", parent.id, 60, namespace=runtime.settings.namespace,
                           redis_url=runtime.settings.redis_url, site=str(runtime.settings.site))  # fmt: skip
    ids = Context(info).spawn("echo-background", [{"n": 1}, {"n": 2}])
    assert [runtime.store.get(run_id).status for run_id in ids] == ["cancelled", "cancelled"]


def test_progress_and_cancelled_do_not_fail_the_work_while_redis_is_unreachable() -> None:
    """Progress is for people watching, and ``cancelled`` can only say no: neither may fail the attempt."""
    import logging

    from jobs.execution.context import Context
    from jobs.execution.task import attempt_context
    from tests.support.servers import free_port

    nowhere = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    context = Context(attempt_context("echo-background", "R1", 60, namespace="nowhere", redis_url=nowhere))
    said: list[str] = []
    keep = logging.Handler()
    keep.emit = lambda record: said.append(record.getMessage())  # type: ignore[method-assign]
    context.log.addHandler(keep)
    context.progress(1, 10, "first")
    context.progress(2, 10, "second")
    assert context.cancelled is False
    assert sum("progress not saved" in line for line in said) == 1  # said once, not on every call


def test_terminal_hooks_fire_once_per_run(runtime):
    """Three failed attempts route the failure exactly once (hooks run in the final transaction)."""
    calls: list[str] = []

    class Count(RunHook):
        def on_terminal(self, run, pipe):
            calls.append(run.status)

    runtime.lifecycle.hooks.append(Count())
    function = runtime.site.get("fail-background")
    run, _ = runtime.store.create(new_run(function, "api"), {})
    failure = Result("error", error={"type": "ValueError", "message": "x"})
    for _ in range(3):
        current = runtime.store.get(run.id)
        assert runtime.lifecycle.claim(run.id, current.token, "w") is not None
        finish(runtime, run.id, runtime.store.get(run.id).token, failure)
        # A duplicate of the same outcome (same token) changes nothing.
        assert finish(runtime, run.id, current.token, failure) is None
    assert runtime.store.get(run.id).status == "failed"
    assert calls == ["failed"]


def test_a_stale_message_cannot_start_a_second_attempt(runtime):
    function = runtime.site.get("echo-background")
    run, _ = runtime.store.create(new_run(function, "api"), {})
    assert runtime.lifecycle.claim(run.id, run.token, "w1") is not None
    assert runtime.lifecycle.claim(run.id, run.token, "w2") is None
    assert runtime.lifecycle.claim(run.id, "other", "w2") is None


def _message_args(runtime, message_id, *, delayed=False):
    raw = runtime.client.hget(runtime.broker.queue_keys(delayed=delayed)[1], message_id)
    return list(dramatiq.Message.decode(raw).args)


def test_messages_carry_the_record_so_a_claim_needs_no_read(runtime):
    """The record travels in its message; a stale copy still claims the current record, never the stale one."""
    function = runtime.site.get("fail-background")
    run, _ = runtime.store.create(new_run(function, "api"), {"body": "b"})
    stored = runtime.client.get(runtime.store.keys.run(run.id)).decode()
    run_id, token, snapshot = _message_args(runtime, run.message_id)
    assert [run_id, token, snapshot] == [run.id, run.token, stored]

    def note(current, pipe):
        current.replay_of = "changed-after-the-message-was-sent"

    runtime.store.update(run.id, note)
    claimed = runtime.lifecycle.claim(run_id, token, "w", snapshot)
    assert claimed is not None
    current, event = claimed
    assert current.status == "running" and current.replay_of == "changed-after-the-message-was-sent"
    assert event == {"body": "b"}
    assert runtime.lifecycle.claim(run_id, token, "w2", snapshot) is None  # the same message again

    # The retry's message carries the record as written with it.
    after = finish(runtime, run.id, token, Result("error", error={"type": "E", "message": "x"}))
    assert after is not None and after.status == "retrying"
    retry_args = _message_args(runtime, after.message_id, delayed=True)
    assert retry_args == [run.id, after.token, runtime.client.get(runtime.store.keys.run(run.id)).decode()]


def test_an_old_message_without_a_record_still_claims(runtime):
    run, _ = runtime.store.create(new_run(runtime.site.get("echo-background"), "api"), {"k": 1})
    claimed = runtime.lifecycle.claim(run.id, run.token, "w")
    assert claimed is not None and claimed[0].status == "running" and claimed[1] == {"k": 1}


def test_finished_runs_leave_no_message_behind(client, worker, runtime):
    """The worker acks its message in the step that records the outcome: nothing stays in Redis."""
    runs = [trigger(client, "echo-background") for _ in range(5)] + [trigger(client, "flaky-background")]
    for run_id in runs:
        assert finished(client, run_id)["status"] == "succeeded"
    queue, bodies = runtime.broker.queue_keys()
    every_workers_acks = runtime.broker.acks_key(broker_id="*")

    def drained():
        acks = [key for key in runtime.client.scan_iter(every_workers_acks) if runtime.client.scard(key)]
        return not acks and runtime.client.hlen(bodies) == 0 and not runtime.client.llen(queue)

    wait_for(drained, message="acks and message bodies to be gone")
