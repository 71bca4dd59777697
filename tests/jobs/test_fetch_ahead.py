"""A worker fetches runs ahead only for threads about to be free, and hands back what then waits too long."""

import json
import queue
import time

import dramatiq.worker

from jobs.broker import AHEAD_LIMIT, QUEUE
from jobs.broker.dramatiq_internals import consumer as consumer_module
from jobs.lifecycle import new_run
from jobs.worker import WorkerProcess
from jobs.worker.process import AHEAD_HORIZON_S, AHEAD_WITHIN_S
from tests.support.procs import wait_for


def _create(runtime, name, n=1):
    function = runtime.site.get(name)
    return [runtime.store.create(new_run(function, "api"), {"n": i})[0] for i in range(n)]


def test_the_consumer_fetches_ahead_only_for_busy_threads_the_worker_expects_to_be_free(runtime):
    _create(runtime, "echo-background", 40)  # what each consumer takes stays taken (unacked)
    broker = runtime.broker
    # The hook says how many runs ahead; at most AHEAD_LIMIT for each thread (prefetch 2) and each busy one.
    for wanted, outstanding in ((0, 2), (1, 3), (2, 4), (5, 7), (100, 2 + 2 * AHEAD_LIMIT)):
        broker.ahead = lambda wanted=wanted: wanted
        try:
            consumer = broker.consume(QUEUE, prefetch=2, timeout=100)
            taken = [wait_for(lambda consumer=consumer: next(consumer), timeout=10, message="a fetch")]
            assert consumer.outstanding_message_count == 2  # an idle worker fetches for its free threads only
            taken.append(next(consumer))  # both threads busy now
            deadline = time.monotonic() + 10 * consumer.linger_s  # what it fetches ahead, it has fetched by then
            while time.monotonic() < deadline:
                next(consumer)
            assert consumer.outstanding_message_count == outstanding
        finally:
            broker.ahead = None
            consumer.close()  # hands the fetched messages back


def test_runs_that_wait_too_long_for_a_thread_go_back_to_the_queue(runtime, monkeypatch):
    runs = _create(runtime, "echo-background", 4)
    broker = runtime.broker
    returned = []
    broker.returned, broker.ahead = returned.extend, (lambda: 2)
    broker.work_queue = work = queue.PriorityQueue()
    try:
        consumer = broker.consume(QUEUE, prefetch=2, timeout=100)
        running = [wait_for(lambda: next(consumer), timeout=10, message="a fetch"), next(consumer)]  # taken by threads
        held = [next(consumer), next(consumer)]  # these wait in the work queue, fetched ahead
        item = getattr(dramatiq.worker, "_WorkQueueItem", lambda priority, message: (priority, message))  # G
        for message in held:
            work.put(item(0, message))
        consumer._hand_back_held()
        assert work.qsize() == 2  # not waited long enough yet

        monkeypatch.setattr(consumer_module, "HOLD_LIMIT_S", 0.0)
        consumer._hand_back_held()
        assert work.qsize() == 0 and work.unfinished_tasks == 0
        assert sorted(m.message_id for m in returned) == sorted(m.message_id for m in held)
        assert consumer.outstanding_message_count == 2  # only the running ones are still this worker's
        queued = runtime.client.lrange(broker.queue_keys()[0], 0, -1)
        assert sorted(queued) == sorted(m.options["redis_message_id"].encode() for m in held)
        assert {m.args[0] for m in running + held} == {r.id for r in runs}
    finally:
        broker.returned = broker.ahead = broker.work_queue = None
        consumer.close()


def test_a_worker_fetches_ahead_only_for_attempts_expected_to_end_at_once(settings):
    process = WorkerProcess(settings, threads=4)
    now = time.monotonic()
    process._typical = {"quick": AHEAD_HORIZON_S / 100, "brisk": AHEAD_HORIZON_S / 2.5, "slow": 5.0}
    assert process._ahead() == 0  # idle threads are free: their runs are fetched for them, not ahead
    process._busy = {1: ("quick", now), 2: ("brisk", now)}
    assert process._ahead() == AHEAD_LIMIT + 2  # what each should start within the horizon, at most the limit
    process._busy[3] = ("slow", now)  # lately slow
    process._busy[4] = ("never-seen", now)  # nothing known yet
    assert process._ahead() == AHEAD_LIMIT + 2
    process._busy[1] = ("quick", now - 1.0)  # quick lately, but this attempt is not
    assert process._ahead() == 2
    process._typical["brisk"] = AHEAD_WITHIN_S * 0.9  # quick enough to count, too slow to fit the horizon twice
    assert process._ahead() == 1


def test_a_function_counts_as_slow_at_once_and_as_quick_only_gradually(settings):
    process = WorkerProcess(settings, threads=1)
    process._learn("f", 0.01)
    process._learn("f", 2.0)
    assert process._typical["f"] == 2.0
    for _ in range(20):
        process._learn("f", 0.01)
    assert 0.01 < process._typical["f"] < 0.2


def test_a_run_fetched_ahead_of_attempts_that_turn_out_long_starts_on_another_worker(
    client, start_worker, runtime, tmp_path
):
    first = start_worker(threads=2, output=tmp_path / "first.log")
    wait_for(lambda: runtime.client.zcard(runtime.store.keys.workers), timeout=30, message="worker heartbeat")
    open_gate, closed_gate = tmp_path / "open", tmp_path / "closed"
    open_gate.write_text("go")

    def trigger(gate):
        return client.post("/.netlify/functions/wait-background", json={"until": str(gate)}).headers["x-nf-request-id"]

    def succeeded(run_id):
        return runtime.store.get(run_id).status == "succeeded"

    warm = [trigger(open_gate) for _ in range(6)]  # the function's attempts are quick lately
    wait_for(lambda: all(succeeded(i) for i in warm), message="the quick runs")
    # Two runs that block and a quick one appear together: the worker's two threads take the first two, and
    # the quick one is fetched ahead of them (their function's attempts were quick), which they then are not.
    function = runtime.site.get("wait-background")
    runs = [new_run(function, "api") for _ in range(3)]
    together = runtime.client.pipeline(transaction=True)
    for run, gate in zip(runs, (closed_gate, closed_gate, open_gate), strict=True):
        keys, args = runtime.store._create_call(run, {"body": json.dumps({"until": str(gate)})}, None)
        runtime.store._create(keys=keys, args=args, client=together)
    together.execute()
    slow, quick = [runs[0].id, runs[1].id], runs[2].id
    wait_for(lambda: all(runtime.store.get(i).status == "running" for i in slow), message="the long attempts")
    # Normally the first worker holds the quick run for 0.5 s (a quarter of the tests' worker timeout), then
    # hands it back ("handed back 1 run(s)" in its log) for the second worker. The threads may also take
    # the three in another order (one was still busy with a warm run), or the quick run may never have been
    # fetched ahead (a loaded machine); whichever: it must not wait for the long attempts to end.
    start_worker(threads=1)
    wait_for(lambda: succeeded(quick), timeout=30, message="the quick run")
    assert [a.outcome for a in runtime.store.get(quick).attempts] == ["succeeded"]  # a handed-back one does not count
    assert not closed_gate.exists() and not any(succeeded(i) for i in slow)
    closed_gate.write_text("go")
    wait_for(lambda: all(succeeded(i) for i in slow), message="the long runs")
    assert first.process is not None and first.process.poll() is None
