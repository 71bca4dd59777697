"""A run answered with 202 is never lost: not by a worker's SIGKILL, not by a Redis crash."""

import os
import time

import pytest

from tests.support.attempts import finish
from tests.support.partition import Relay
from tests.support.procs import alive, state, wait_for
from tests.support.redis import RedisServer
from tests.support.sites import FUNCTIONS, TOML, make_site

LAST_WORDS = FUNCTIONS["wait-background"].replace(
    '            return {"attempt"', '            print("last words")\n            return {"attempt"'
)


@pytest.fixture
def site(tmp_path):
    """The usual test site, plus wait-background's code under a 2 s time limit (it outlives it), and again
    under a 4 s one, printing a line once its gate opens."""
    tables = (
        '\n[backburner.functions."short-wait-background"]\n  time_limit = "2s"\n  retries = []\n'
        '\n[backburner.functions."last-words-background"]\n  time_limit = "4s"\n  retries = []\n'
    )
    functions = {
        **FUNCTIONS,
        "short-wait-background": FUNCTIONS["wait-background"],
        "last-words-background": LAST_WORDS,
    }
    return make_site(tmp_path / "site", functions, TOML + tables)


@pytest.fixture
def redis_server(tmp_path):
    """A private Redis per test: these tests kill it."""
    with RedisServer(tmp_path / "redis") as server:
        yield server


def status(client, run_id):
    return client.get(f"/api/runs/{run_id}").json()


def start_waiting(client, tmp_path, function="wait-background"):
    """Start a run of wait-background's code: its id, the gate file that lets it finish, the file its next
    attempt writes its pid to, and the pid of the attempt now running."""
    gate, started = tmp_path / "gate", tmp_path / "gate.started"
    run_id = client.post(f"/.netlify/functions/{function}", json={"until": str(gate)}).headers["x-nf-request-id"]
    wait_for(started.exists, message=f"{function}'s attempt to start")
    pid = int(started.read_text())
    started.unlink()
    return run_id, gate, started, pid


def test_sigkilled_worker_run_resumes_on_another_worker(client, start_worker, runtime, tmp_path):
    first = start_worker()
    run_id, gate, started, child_pid = start_waiting(client, tmp_path)

    first.kill()
    killed_at = time.monotonic()
    wait_for(lambda: not alive(child_pid), timeout=10, message="the killed worker's child to die with it")
    start_worker()
    wait_for(started.exists, timeout=60, message="the run to resume on the second worker")
    gate.write_text("go")
    run = wait_for(lambda: (r := status(client, run_id))["status"] == "succeeded" and r, message="success")

    assert time.monotonic() - killed_at < 120
    assert [a["outcome"] for a in run["attempts"]] == ["lost", "succeeded"]
    assert run["attempts"][0]["error"]["type"] == "WorkerLost"
    assert run["attempts"][0]["worker"] != run["attempts"][1]["worker"]
    assert run["result"] == {"attempt": 2}
    # Its child said nothing of it: the reaper's line in the run's log does, as for a timeout.
    logged = [(e["attempt"], e["level"], e["line"]) for e in client.get(f"/api/runs/{run_id}/logs").json()["lines"]]
    assert (1, "ERROR", f"WorkerLost: {run['attempts'][0]['error']['message']}") in logged, logged


def test_a_stalled_workers_attempt_given_up_for_lost_is_stopped_when_it_wakes(client, start_worker, runtime, tmp_path):
    """A worker that stalls (SIGSTOP here; a long GC pause or a frozen VM elsewhere) is given up for lost and its
    run resumed; when it wakes, its old attempt must stop rather than run beside the new one."""
    import signal

    start_worker()
    run_id, gate, started, child_pid = start_waiting(client, tmp_path)
    worker = runtime.store.get(run_id).worker
    worker_pid = int(worker.split(":")[-2])  # worker ids are host:pid:random
    os.kill(worker_pid, signal.SIGSTOP)
    try:
        assert runtime.lifecycle.lose(run_id, worker, "stopped heartbeating") is not None  # as a reaper would
    finally:
        os.kill(worker_pid, signal.SIGCONT)
    wait_for(lambda: not alive(child_pid), timeout=10, message="the woken worker to stop the lost attempt")
    wait_for(started.exists, timeout=60, message="the run to resume")
    gate.write_text("go")
    run = wait_for(lambda: (r := status(client, run_id))["status"] == "succeeded" and r, message="success")
    assert [a["outcome"] for a in run["attempts"]] == ["lost", "succeeded"]


def test_a_worker_stopped_alone_has_its_attempt_paused_before_the_run_resumes_elsewhere(
    client, start_worker, runtime, tmp_path
):
    """A worker process stopped on its own (SIGSTOP here, a debugger elsewhere; its children run on) cannot pause
    its attempt when its heartbeats stop, as a cut-off one does: the attempt's child pauses itself, before the
    run resumes on another worker, and the woken worker stops it rather than let it go on."""
    import signal

    start_worker()
    run_id, gate, started, child = start_waiting(client, tmp_path)
    worker_pid = int(runtime.store.get(run_id).worker.split(":")[-2])  # worker ids are host:pid:random
    os.kill(worker_pid, signal.SIGSTOP)
    try:
        start_worker()
        wait_for(started.exists, timeout=30, message="the run to resume on the other worker")
        assert state(child) == "T", "the stopped worker's attempt ran on beside the resumed one"
    finally:
        os.kill(worker_pid, signal.SIGCONT)
    wait_for(lambda: not alive(child), timeout=30, message="the woken worker to stop its attempt")
    gate.write_text("go")
    run = wait_for(lambda: (r := status(client, run_id))["status"] == "succeeded" and r, message="success")
    assert [a["outcome"] for a in run["attempts"]] == ["lost", "succeeded"]


def test_a_hung_redis_does_not_stretch_an_attempts_time_limit(client, redis_server, start_worker, runtime, tmp_path):
    """The watch over a running attempt asks Redis whether to stop it; a Redis that hangs (SIGSTOP here)
    must not hold the time limit's kill back by the usual 10 s socket timeout."""
    import signal

    start_worker()
    run_id, _, _, child = start_waiting(client, tmp_path, "short-wait-background")  # its gate never opens
    assert redis_server.process is not None
    os.kill(redis_server.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        wait_for(lambda: not alive(child), timeout=30, message="the attempt to be killed at its time limit")
        late = time.monotonic() - started
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)
    assert late < 5, f"killed {late:.1f} s after Redis hung, for a 2 s time limit"
    run = wait_for(lambda: (r := status(client, run_id))["status"] == "failed" and r, message="the failure")
    assert run["error"]["type"] == "TimeLimitExceeded"


def test_a_hung_redis_does_not_hold_a_finished_attempts_answer_past_its_time_limit(
    client, redis_server, start_worker, runtime, tmp_path
):
    """The end of an attempt sends its last log lines; a Redis that hangs just then must not keep the handler's
    answer from the worker until the time limit kills it (TimeLimitExceeded for work that was done). The lines
    still arrive once Redis answers. (A long worker_timeout keeps the pause for a silent worker out of it.)"""
    import re
    import signal

    output = tmp_path / "worker.log"
    start_worker(output=output, extra_env={"BACKBURNER_WORKER_TIMEOUT": "10"})
    run_id, gate, _, _ = start_waiting(client, tmp_path, "last-words-background")
    assert redis_server.process is not None
    os.kill(redis_server.process.pid, signal.SIGSTOP)
    try:
        gate.write_text("go")
        pattern = rf"run {run_id} attempt 1 of last-words-background: (\w+)"
        ended = wait_for(lambda: re.search(pattern, output.read_text()), timeout=30, message="the attempt's end")
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)
    assert ended.group(1) == "ok"
    run = wait_for(lambda: (r := status(client, run_id))["status"] == "succeeded" and r, message="success")
    assert run["result"] == {"attempt": 1}
    lines = lambda: [entry["line"] for entry in client.get(f"/api/runs/{run_id}/logs").json()["lines"]]  # noqa: E731
    wait_for(lambda: "last words" in lines(), timeout=15, message="the last line to arrive")


def test_a_worker_cut_off_from_redis_pauses_its_attempt_before_the_run_resumes_elsewhere(
    client, redis_server, start_worker, runtime, tmp_path
):
    """A network partition between one worker and Redis: the other workers give it up for lost after
    worker_timeout and resume its run. Its attempt must be paused by then, so that the two never run side by
    side, and stopped once the partition heals. (worker_timeout is 2 s here, so the pause comes 0.67 s early:
    a watch read that the cut holds must end well within that.)"""
    with Relay(redis_server.port) as relay:
        start_worker(extra_env={"REDIS_URL": relay.through(redis_server.url)})
        run_id, gate, started, child = start_waiting(client, tmp_path)
        relay.cut()
        start_worker()  # one that still reaches Redis
        wait_for(started.exists, timeout=30, message="the run to resume on the other worker")
        assert state(child) == "T", "the cut-off worker's attempt ran on beside the resumed one"
        relay.heal()
        wait_for(lambda: not alive(child), timeout=30, message="the cut-off worker to stop its attempt")
    gate.write_text("go")
    run = wait_for(lambda: (r := status(client, run_id))["status"] == "succeeded" and r, message="success")
    assert [a["outcome"] for a in run["attempts"]] == ["lost", "succeeded"]


def test_an_attempt_paused_while_redis_was_away_goes_on_when_it_is_back(
    client, redis_server, start_worker, runtime, tmp_path
):
    """Redis hung for everyone (SIGSTOP here): a worker cannot tell that from a partition, so its attempt
    pauses; but no worker could give it up meanwhile, so the attempt goes on once Redis is back, and the outage
    costs no attempt."""
    import signal

    start_worker()
    run_id, gate, _, child = start_waiting(client, tmp_path)
    assert redis_server.process is not None
    os.kill(redis_server.process.pid, signal.SIGSTOP)
    try:
        wait_for(lambda: state(child) == "T", timeout=30, message="the attempt to pause")
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)
    wait_for(lambda: state(child) != "T", timeout=30, message="the attempt to go on")
    gate.write_text("go")
    run = wait_for(lambda: (r := status(client, run_id))["status"] == "succeeded" and r, message="success")
    assert [a["outcome"] for a in run["attempts"]] == ["succeeded"]
    assert run["result"] == {"attempt": 1}


def test_an_attempt_paused_while_redis_was_down_and_restarted_costs_no_attempt(
    client, redis_server, start_worker, runtime, tmp_path
):
    """Redis killed (-9) and started again on its append-only file after more than worker_timeout: every
    heartbeat in it is then stale, and no sweep (by the attempt's own worker included) may take that for a
    death before heartbeats could land again."""
    start_worker()
    run_id, gate, _, child = start_waiting(client, tmp_path)
    redis_server.stop(kill=True)
    down_at = time.monotonic()
    wait_for(lambda: state(child) == "T", timeout=30, message="the attempt to pause")
    # The outage itself is what is under test: it must outlast worker_timeout (2 s here) before Redis returns.
    wait_for(lambda: time.monotonic() - down_at > 3.0, timeout=10, message="the outage to outlast worker_timeout")
    redis_server.start()
    wait_for(lambda: state(child) not in ("T", ""), timeout=30, message="the attempt to go on")
    gate.write_text("go")
    run = wait_for(lambda: (r := status(client, run_id))["status"] == "succeeded" and r, message="success")
    assert [a["outcome"] for a in run["attempts"]] == ["succeeded"]


def test_run_accepted_then_redis_crash_still_runs(client, redis_server, start_worker, runtime):
    run_id = client.post("/.netlify/functions/echo-background", json={"durable": True}).headers["x-nf-request-id"]
    redis_server.restart(kill=True)  # SIGKILL: only what reached the append-only file survives
    start_worker()
    run = wait_for(lambda: (r := status(client, run_id))["status"] == "succeeded" and r, message="success")
    assert run["result"]["event"]["body"] == '{"durable":true}'


def test_outcome_is_recorded_after_redis_crashes_during_an_attempt(
    client, redis_server, start_worker, runtime, tmp_path
):
    start_worker()
    run_id, gate, _, _ = start_waiting(client, tmp_path)
    redis_server.restart(kill=True)
    gate.write_text("go")
    run = wait_for(
        lambda: (r := status(client, run_id))["status"] == "succeeded" and r,
        timeout=60,
        message="success after the Redis crash",
    )
    assert [a["outcome"] for a in run["attempts"]] == ["succeeded"]


def test_a_pending_retry_survives_a_redis_crash(client, redis_server, start_worker, runtime):
    """Dramatiq drops delayed messages held in a live worker's memory when Redis goes away; the reaper
    notices the overdue retry and dispatches it again."""
    start_worker()
    run_id = client.post("/.netlify/functions/flaky-background").headers["x-nf-request-id"]
    wait_for(lambda: status(client, run_id)["status"] == "retrying", message="first failure")
    redis_server.restart(kill=True)
    run = wait_for(
        lambda: (r := status(client, run_id))["status"] == "succeeded" and r,
        timeout=60,
        message="success after the Redis crash",
    )
    assert [a["outcome"] for a in run["attempts"]] == ["failed", "failed", "succeeded"]


def test_a_worker_started_before_redis_waits_for_it(tmp_path, site, env):
    """Containers start in any order: the worker waits for Redis instead of crashing."""
    import redis as redis_lib

    from backburner.redis_server import free_port
    from tests.support.procs import WorkerProc

    port = free_port()
    late = RedisServer(tmp_path / "late", port=port)
    worker = WorkerProc(site, {**env, "REDIS_URL": late.url}).start()
    try:
        with late:
            client = redis_lib.Redis.from_url(late.url)
            keys = f"{env['BACKBURNER_NAMESPACE']}:workers"
            wait_for(lambda: client.zcard(keys), timeout=30, message="the worker's first heartbeat")
            assert worker.process.poll() is None
    finally:
        worker.stop()


def test_the_api_accepts_again_right_after_a_redis_restart(client, redis_server):
    """Pooled connections left stale by a restart are retried, so the first call after it is not a 503."""
    assert client.post("/.netlify/functions/echo-background").status_code == 202
    redis_server.restart(kill=True)
    assert [client.post("/.netlify/functions/echo-background").status_code for _ in range(3)] == [202, 202, 202]
    redis_server.stop()
    down = client.post("/.netlify/functions/echo-background")
    assert down.status_code == 503 and down.json()["error"]["code"] == "store_unavailable"


def test_the_reaper_gives_queued_runs_whose_message_vanished_a_new_one(runtime):
    """Checked for a whole batch of old queued runs at once; a run whose message is there is left alone."""
    from datetime import timedelta

    from jobs import clock
    from jobs.lifecycle import new_run
    from jobs.worker.reaper import Reaper

    function = runtime.site.get("echo-background")
    lost, kept = (runtime.store.create(new_run(function, "api"), {})[0] for _ in range(2))

    def age(run, pipe):
        run.created_at = clock.iso(clock.now() - timedelta(hours=1))

    for run in (lost, kept):
        runtime.store.update(run.id, age)
    bodies = runtime.broker.queue_keys()[1]
    runtime.client.hdel(bodies, lost.message_id)
    assert Reaper(runtime.settings, runtime.lifecycle, "reaper-test").sweep() == 1
    resumed = runtime.store.get(lost.id)
    assert resumed.status == "queued" and resumed.token != lost.token
    assert runtime.client.hexists(bodies, resumed.message_id)
    assert runtime.store.get(kept.id).token == kept.token


def test_after_a_gap_in_heartbeats_the_reaper_judges_no_worker_until_they_could_heartbeat_again(runtime):
    """Heartbeats that stopped because Redis was away say nothing about the workers; a run whose worker has not
    heartbeated since is left alone until ``worker_timeout`` has passed with Redis answering."""
    import time as clock_time

    from jobs.lifecycle import new_run
    from jobs.worker.reaper import Reaper

    run, _ = runtime.store.create(new_run(runtime.site.get("echo-background"), "api"), {})
    runtime.lifecycle.claim(run.id, run.token, "a-worker-that-never-heartbeated")
    reaper = Reaper(runtime.settings, runtime.lifecycle, "reaper-test")
    reaper._settled_at = clock_time.monotonic()  # Redis just came back (what _beat and sweep note after a gap)
    assert reaper.sweep() == 0 and runtime.store.get(run.id).status == "running"
    reaper._settled_at -= runtime.settings.worker_timeout  # worker_timeout later, with Redis answering
    assert reaper.sweep() == 1
    assert runtime.store.get(run.id).attempts[-1].outcome == "lost"


def test_a_reaper_cut_off_from_redis_stops_within_one_join_limit(settings, redis_server, runtime):
    """Stopping while every byte to Redis is held, both loops blocked in calls: they share one 5 s limit, and no
    last write (taking this worker's heartbeat out) waits out a 10 s socket timeout; the heartbeat ages out
    as a crashed worker's does. Before, this took 18 s, most of an orchestrator's 30 s grace period."""
    from jobs.wiring import open_runtime
    from jobs.worker.reaper import Reaper

    with Relay(redis_server.port) as relay:
        far = open_runtime(settings.model_copy(update={"redis_url": relay.through(settings.redis_url)}))
        reaper = Reaper(far.settings, far.lifecycle, "cut-off")
        try:
            reaper.start()
            relay.cut()
            wait_for(lambda: reaper.silent_for() > reaper._gap_s(), message="heartbeats to stop landing")
            started = time.monotonic()
            reaper.stop()
            took = time.monotonic() - started
        finally:
            far.close()
    assert took < 8, f"stopped in {took:.1f} s"
    assert runtime.client.zscore(runtime.store.keys.workers, "cut-off") is not None  # left to age out


def test_a_sweep_reads_only_the_active_runs_it_may_have_to_act_on(runtime):
    """The active index is scored by when the reaper has a reason to look, so a backlog costs nothing."""
    from jobs import clock
    from jobs.lifecycle import new_run
    from jobs.runs import Result

    function = runtime.site.get("fail-background")
    queued, retrying = (runtime.store.create(new_run(function, "api"), {})[0] for _ in range(2))
    active = runtime.store.keys.active
    assert runtime.client.zscore(active, queued.id) == clock.parse_iso(queued.created_at).timestamp() * 1000
    claimed, _ = runtime.lifecycle.claim(retrying.id, retrying.token, "w")
    assert runtime.client.zscore(active, retrying.id) == 0  # running: always looked at
    after = finish(runtime, retrying.id, retrying.token, Result("error", error={"type": "E", "message": "x"}))
    due = clock.parse_iso(after.next_attempt_at).timestamp() * 1000
    assert after.status == "retrying" and runtime.client.zscore(active, retrying.id) == due
    assert runtime.store.active_ids(due_ms=int(due) - 1) == [queued.id]
    assert sorted(runtime.store.active_ids(due_ms=int(due))) == sorted([queued.id, retrying.id])


@pytest.fixture
def nap(site):
    """A function that takes a moment, so a worker has fetched more than it runs when it is told to stop."""
    (site / "netlify" / "functions" / "nap-background.py").write_text(
        "import time\n\ndef handler(event, context):\n    time.sleep(0.2)\n    return {'attempt': context.attempt}\n"
    )


def test_a_stopping_worker_hands_back_fetched_runs_and_their_attempts_do_not_count(nap, client, start_worker, runtime):
    import signal

    first = start_worker(threads=4)
    ids = [client.post("/.netlify/functions/nap-background").headers["x-nf-request-id"] for _ in range(24)]
    wait_for(lambda: sum(status(client, i)["status"] == "succeeded" for i in ids) >= 4, message="some runs to finish")
    os.killpg(first.pid, signal.SIGTERM)  # one SIGTERM: finish what runs, hand back what was fetched
    assert first.process is not None and first.process.wait(timeout=30) == 0
    start_worker(threads=4)
    runs = [wait_for(lambda i=i: (r := status(client, i))["status"] in ("succeeded", "failed") and r) for i in ids]
    assert {r["status"] for r in runs} == {"succeeded"}
    assert [r["attempts"][0]["outcome"] for r in runs if len(r["attempts"]) != 1] == []  # nothing lost


def test_a_message_fetched_by_a_reply_that_never_came_is_put_back_by_its_live_worker(client, start_worker, runtime):
    """A Redis that hung runs a fetch after the worker gave up on its reply (and restarted its consumer): the run's
    id lands in the ack set of a worker that never got it. Dramatiq puts such ids back only when that worker's
    heartbeat stops; a live worker puts them back itself, within two sweeps (about 2 s at these settings)."""
    import signal

    worker = start_worker()
    heartbeats = f"{runtime.broker.namespace}:__heartbeats__"
    [broker_id] = wait_for(lambda: runtime.client.zrange(heartbeats, 0, -1), message="the worker's heartbeat")
    queue = runtime.broker.queue_keys()[0]
    os.kill(worker.pid, signal.SIGSTOP)  # for a moment: so that it does not fetch the run first
    try:
        run_id = client.post("/.netlify/functions/echo-background", json={}).headers["x-nf-request-id"]
        [message_id] = runtime.client.lrange(queue, 0, -1)
        with runtime.client.pipeline(transaction=True) as pipe:  # what the late fetch does, and nothing else
            pipe.lrem(queue, 0, message_id)
            pipe.sadd(runtime.broker.acks_key(broker_id.decode()), message_id)
            pipe.execute()
    finally:
        os.kill(worker.pid, signal.SIGCONT)

    done = wait_for(lambda: (r := status(client, run_id))["status"] == "succeeded" and r, timeout=20, message="the run")
    assert [a["outcome"] for a in done["attempts"]] == ["succeeded"]
    assert not runtime.client.smembers(runtime.broker.acks_key(broker_id.decode()))


def test_a_second_signal_stops_a_waiting_worker_at_once_and_says_what_that_leaves(client, start_worker, tmp_path):
    import signal

    output = tmp_path / "worker.log"
    worker = start_worker(output=output)
    start_waiting(client, tmp_path)
    os.kill(worker.pid, signal.SIGTERM)
    wait_for(lambda: "waiting for running attempts" in output.read_text(), message="the first signal's stop")
    os.kill(worker.pid, signal.SIGTERM)

    assert worker.process.wait(timeout=10) == 1
    assert "a second signal, so it stops at once; its running attempts are resumed by another worker" in (
        output.read_text()
    )
