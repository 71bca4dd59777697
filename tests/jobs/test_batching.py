"""Claims and outcomes written for many runs in one round trip, and what happens to claims that never run."""

import threading
import time

import pytest

from jobs.broker import QUEUE, redis_message_id
from jobs.lifecycle import FinishedAttempt, new_run
from jobs.runs import Result
from jobs.store import NoSlot
from jobs.worker.recorder import Recorder
from tests.support.attempts import finish


def _create(runtime, name, n=1):
    function = runtime.site.get(name)
    return [runtime.store.create(new_run(function, "api"), {"n": i})[0] for i in range(n)]


def _messages(runtime, runs):
    """What a fetched batch of these runs' messages carries: (run id, token, record as sent, message id)."""
    return [(r.id, r.token, runtime.client.get(runtime.store.keys.run(r.id)).decode(), r.message_id) for r in runs]


def test_claim_many_claims_each_run_by_its_own_rules(runtime):
    fresh, taken, changed = _create(runtime, "echo-background", 3)
    first, second = _create(runtime, "single-background", 2)
    assert runtime.lifecycle.claim(taken.id, taken.token, "other") is not None

    def note(current, pipe):
        current.replay_of = "changed-after-the-message-was-sent"

    messages = _messages(runtime, (fresh, taken, changed, first, second))
    runtime.store.update(changed.id, note)
    limit = {"single-background": 1}.get
    answers = runtime.lifecycle.claim_many(messages, "w", concurrency=limit)
    claimed, stale, redone, slot, no_slot = answers
    assert claimed[0].status == "running" and claimed[0].worker == "w" and claimed[1] == {"n": 0}
    assert stale is None  # another worker holds it
    assert redone[0].replay_of == "changed-after-the-message-was-sent" and redone[0].attempt == 1
    assert slot[0].status == "running"
    assert isinstance(no_slot, NoSlot) and runtime.store.get(second.id).status == "queued"
    for run in (fresh, changed, first):
        assert runtime.store.get(run.id).status == "running"
    assert runtime.store.get(taken.id).worker == "other"


def test_a_claim_whose_reply_was_lost_finds_its_attempt_started(runtime):
    """Repeating a claim (a retry after a lost reply) is safe; another message with the same token is not it."""
    (run,) = _create(runtime, "echo-background")
    first, _ = runtime.lifecycle.claim(run.id, run.token, "w", message_id="m1")
    again, _ = runtime.lifecycle.claim(run.id, run.token, "w", message_id="m1")
    assert again.attempt == first.attempt == 1 and len(again.attempts) == 1
    assert runtime.lifecycle.claim(run.id, run.token, "w", message_id="m2") is None  # e.g. a wake-up's fallback
    assert runtime.lifecycle.claim(run.id, run.token, "w2", message_id="m1") is None
    assert runtime.lifecycle.claim(run.id, run.token, "w") is None
    assert "message" not in runtime.store.get(run.id).public()["attempts"][0]  # internal

    # The same for a batch sent twice (redis-py retries a pipeline whose connection dropped).
    (other,) = _create(runtime, "echo-background")
    batch = _messages(runtime, [other])
    (claimed,) = runtime.lifecycle.claim_many(batch, "w")
    (repeated,) = runtime.lifecycle.claim_many(batch, "w")
    assert repeated is not None and repeated[0].attempt == claimed[0].attempt == 1


def test_finish_many_records_each_outcome_and_skips_superseded_ones(runtime):
    ok, failing, superseded = _create(runtime, "fail-background", 3)
    claims = [runtime.lifecycle.claim(r.id, r.token, "w")[0] for r in (ok, failing, superseded)]
    runtime.lifecycle.lose(superseded.id, "w", "the reaper gave up on it")
    error = Result("error", error={"type": "ValueError", "message": "no"})
    recorded = runtime.lifecycle.finish_many(
        [
            FinishedAttempt(claims[0], ok.token, Result("ok", value=7)),
            FinishedAttempt(claims[1], failing.token, error),
            FinishedAttempt(claims[2], superseded.token, Result("ok")),
        ]
    )
    assert [r.status if r else None for r in recorded] == ["succeeded", "retrying", None]
    assert runtime.store.get(ok.id).result == 7
    assert runtime.store.get(failing.id).attempts[0].error.type == "ValueError"
    assert runtime.store.get(superseded.id).attempts[0].outcome == "lost"


def test_batched_writes_load_the_script_again_after_redis_lost_it(runtime):
    """A restarted Redis has no scripts; the pipelined compare-and-set notices and loads it."""
    runs = _create(runtime, "echo-background", 2)
    runtime.client.script_flush()
    answers = runtime.lifecycle.claim_many(_messages(runtime, runs), "w")
    assert [a[0].status for a in answers] == ["running", "running"]


def test_release_undoes_a_claim_that_never_ran(runtime):
    (run,) = _create(runtime, "echo-background")
    claimed, _ = runtime.lifecycle.claim(run.id, run.token, "w")
    released = runtime.lifecycle.release(claimed, claimed.token)
    assert released is not None
    assert (released.status, released.attempt, released.attempts, released.started_at) == ("queued", 0, [], None)
    assert released.token != run.token and runtime.client.zcard(runtime.store.keys.active) >= 1
    assert runtime.lifecycle.claim(run.id, run.token, "w2") is None  # the old message is stale now
    again, _ = runtime.lifecycle.claim(run.id, released.token, "w2")
    assert again.attempt == 1 and again.worker == "w2"
    assert runtime.lifecycle.release(claimed, claimed.token) is None  # only the claim it made


def test_a_stopping_consumer_hands_back_what_it_fetched(runtime):
    """Fetched messages reach the ``fetched`` hook before any is taken, and unrun ones the ``returned`` hook."""
    runs = _create(runtime, "echo-background", 3)
    broker = runtime.broker
    fetched, returned = [], []
    broker.fetched, broker.returned = (lambda data: fetched.append(list(data))), returned.extend
    try:
        consumer = broker.consume(QUEUE, prefetch=3, timeout=100)
        first = next(consumer)
        assert len(fetched) == 1 and len(fetched[0]) == 3
        consumer.close()
    finally:
        broker.fetched = broker.returned = None
    handed_back = sorted(m.args[0] for m in returned)
    assert first.args[0] not in handed_back and sorted([first.args[0], *handed_back]) == sorted(r.id for r in runs)
    assert runtime.client.llen(runtime.broker.queue_keys()[0]) == 2  # back on the queue for any worker


def test_recorder_acks_every_message_even_for_a_superseded_attempt(runtime):
    done, superseded = _create(runtime, "echo-background", 2)
    consumer = runtime.broker.consume(QUEUE, prefetch=2, timeout=100)
    messages = [next(consumer), next(consumer)]
    by_run = {m.args[0]: m for m in messages}
    claims = {r.id: runtime.lifecycle.claim(r.id, r.token, "w")[0] for r in (done, superseded)}
    runtime.lifecycle.lose(superseded.id, "w", "gone")
    recorder = Recorder(runtime.lifecycle, runtime.broker).start()
    for run in (done, superseded):
        recorder.submit(FinishedAttempt(claims[run.id], run.token, Result("ok")), by_run[run.id])
    recorder.stop(timeout_s=10)
    assert runtime.store.get(done.id).status == "succeeded"
    assert runtime.store.get(superseded.id).status == "queued"  # resumed by the reaper's path, not by this outcome
    acks = runtime.client.smembers(runtime.broker.acks_key())
    bodies = runtime.broker.queue_keys()[1]
    for message in messages:
        assert message.acked_with_run
        assert redis_message_id(message).encode() not in acks
        assert not runtime.client.hexists(bodies, redis_message_id(message))


def test_an_outcome_written_while_redis_is_down_is_recorded_once_it_is_back(runtime, redis_server, monkeypatch):
    """The first write changes the claimed run in place and then fails; the retry must start again from the
    record as claimed, or the attempt looks recorded already and its outcome is dropped (then the reaper
    would call the run lost)."""
    from jobs.errors import StoreUnavailable

    [run] = _create(runtime, "echo-background", 1)
    claimed = runtime.lifecycle.claim(run.id, run.token, "w")[0]
    failed = threading.Event()
    finish_many = runtime.lifecycle.finish_many

    def noting_failures(outcomes):
        try:
            return finish_many(outcomes)
        except StoreUnavailable:
            failed.set()
            raise

    monkeypatch.setattr(runtime.lifecycle, "finish_many", noting_failures)
    redis_server.stop()
    try:
        recorder = Recorder(runtime.lifecycle, runtime.broker).start()
        recorder.submit(FinishedAttempt(claimed, run.token, Result("ok", value={"done": 1})))
        assert failed.wait(30), "the recorder never tried while Redis was down"
    finally:
        redis_server.start()
    recorder.stop(timeout_s=60)
    after = runtime.store.get(run.id)
    assert after.status == "succeeded" and after.result == {"done": 1}
    assert [a.outcome for a in after.attempts] == ["succeeded"]


def test_a_worker_claims_each_fetched_batch_and_releases_what_it_hands_back(runtime, settings):
    """The worker's side of the hooks: one step claims the batch; handing messages back queues their runs again."""
    import dramatiq

    from jobs.worker import WorkerProcess

    runs = _create(runtime, "echo-background", 2)
    bodies = runtime.client.hmget(runtime.broker.queue_keys()[1], [r.message_id for r in runs])
    process = WorkerProcess(settings)
    process.runtime = runtime
    process._claim_fetched(bodies)
    assert [runtime.store.get(r.id).status for r in runs] == ["running", "running"]
    assert sorted(process._claims) == sorted(r.message_id for r in runs)
    process._release_returned([dramatiq.Message.decode(body) for body in bodies])
    after = [runtime.store.get(r.id) for r in runs]
    assert [(a.status, a.attempt, a.worker) for a in after] == [("queued", 0, None)] * 2
    assert not process._claims


def test_closing_a_consumer_survives_redis_going_away(runtime, monkeypatch):
    """Dramatiq's consumer thread calls close() while restarting after a connection error; an error
    escaping it would end the thread, and the worker would stop taking messages."""
    import redis

    _create(runtime, "echo-background", 2)
    consumer = runtime.broker.consume(QUEUE, prefetch=2, timeout=100)
    next(consumer)

    def down(*args):
        raise redis.ConnectionError("Redis went away")

    monkeypatch.setattr(runtime.broker, "do_requeue", down, raising=False)
    consumer.close()
    assert not consumer.message_cache


def test_a_batch_that_cannot_be_claimed_is_left_to_the_threads(runtime, settings):
    """Nothing may escape the fetch hook: the batch would sit in the consumer's ack set for good."""
    from jobs.worker import WorkerProcess

    (run,) = _create(runtime, "echo-background")
    body = runtime.client.hget(runtime.broker.queue_keys()[1], run.message_id)
    process = WorkerProcess(settings)
    process.runtime = runtime
    process._claim_fetched([b"{not a message", body])
    assert not process._claims and runtime.store.get(run.id).status == "queued"


def test_a_run_that_vanished_is_answered_in_its_place_and_the_rest_are_claimed(runtime):
    from jobs.errors import RunNotFound

    gone, kept = _create(runtime, "echo-background", 2)
    messages = _messages(runtime, (gone, kept))
    runtime.client.delete(runtime.store.keys.run(gone.id))
    vanished, claimed = runtime.lifecycle.claim_many(messages, "w")
    assert isinstance(vanished, RunNotFound) and claimed[0].status == "running"
    run_without_copy = runtime.store.get(kept.id)  # a Run with no stored JSON: read, then written
    assert run_without_copy.stored is None
    (recorded,) = runtime.lifecycle.finish_many([FinishedAttempt(run_without_copy, kept.token, Result("ok"))])
    assert recorded.status == "succeeded"


def test_a_bad_waiting_entry_never_blocks_the_outcome_that_frees_a_slot(runtime):
    (run,) = _create(runtime, "single-background")
    limit = {"single-background": 1}.get
    claimed, _ = runtime.lifecycle.claim(run.id, run.token, "w", concurrency=limit)
    waiting = runtime.store.keys.waiting("single-background")
    runtime.client.set(runtime.store.keys.run("01BROKEN"), "{not json")
    runtime.client.rpush(waiting, "01BROKEN", "01MISSING")
    assert finish(runtime, run.id, run.token, Result("ok"), claimed=claimed).status == "succeeded"
    assert runtime.client.llen(waiting) == 0


def test_a_free_thread_waits_for_its_busy_siblings_so_one_fetch_refills_both(runtime):
    """Woken by the ack of the busy thread's message, not by the linger running out."""
    runs = _create(runtime, "echo-background", 3)
    queue = runtime.broker.queue_keys()[0]
    consumer = runtime.broker.consume(QUEUE, prefetch=2, timeout=60_000)
    consumer.linger_s = 60.0
    first, second = next(consumer), next(consumer)  # every thread free: one fetch for both
    assert runtime.client.llen(queue) == 1
    consumer.ack(first)
    threading.Timer(0.2, consumer.ack, [second]).start()
    started = time.monotonic()
    assert next(consumer) is None  # one thread free, one busy: it waits, and fetches nothing
    assert time.monotonic() - started < 30  # the ack woke it
    assert runtime.client.llen(queue) == 1
    third = next(consumer)  # both free now: fetched at once
    assert third.args[0] == runs[2].id and runtime.client.llen(queue) == 0


def test_a_free_thread_fetches_alone_once_the_linger_is_over(runtime):
    _create(runtime, "echo-background", 3)
    consumer = runtime.broker.consume(QUEUE, prefetch=2, timeout=60_000)
    consumer.linger_s = 0.0
    first, _ = next(consumer), next(consumer)
    consumer.ack(first)
    assert next(consumer) is not None  # the other thread is still busy, but nobody waits any longer


def test_writes_that_commit_with_a_change_land_byte_for_byte(runtime):
    """A change's writes travel to the script as one JSON plan; words JSON cannot carry (bytes that are not
    UTF-8) fall back to one argument each, and both land exactly as given."""
    (run,) = _create(runtime, "echo-background")
    text_key, binary_key = f"{runtime.settings.namespace}:t:text", f"{runtime.settings.namespace}:t:binary"

    def note(current, pipe):
        current.replay_of = "noted"
        pipe.set(text_key, 'é "quoted" \\ \U0001f525')
        pipe.hincrby(text_key + ":n", "f", 2)

    runtime.store.update(run.id, note)
    assert runtime.client.get(text_key).decode() == 'é "quoted" \\ \U0001f525'
    assert runtime.client.hget(text_key + ":n", "f") == b"2"

    def binary(current, pipe):
        current.replay_of = "binary"
        pipe.set(binary_key, b"\xff\xfe\x00raw")
        pipe.zadd(binary_key + ":z", {"m": 1.5})

    runtime.store.update(run.id, binary)
    assert runtime.client.get(binary_key) == b"\xff\xfe\x00raw"
    assert runtime.client.zscore(binary_key + ":z", "m") == 1.5
    assert runtime.store.get(run.id).replay_of == "binary"


@pytest.mark.parametrize("word", ["text", b"\xff raw"], ids=["json-plan", "one-argument-each"])
def test_writes_only_while_a_hash_field_holds_a_value_land_only_then(runtime, word):
    """``only_while``: the commands inside land with the change only if the field holds the value as the write
    lands; the change and the commands outside land either way."""
    (run,) = _create(runtime, "echo-background")
    ns = runtime.settings.namespace
    claim, landed, always = f"{ns}:t:claim", f"{ns}:t:landed", f"{ns}:t:always"
    runtime.client.hset(claim, "claim", "mine")

    def change(holder):
        def mutate(current, pipe):
            current.replay_of = holder
            with pipe.only_while(claim, "claim", holder):
                pipe.rpush(landed, holder)
                pipe.rpush(landed, word)
            pipe.rpush(always, holder)

        return mutate

    runtime.store.update(run.id, change("theirs"))
    runtime.store.update(run.id, change("mine"))
    runtime.client.hdel(claim, "claim")
    runtime.store.update(run.id, change("mine, once the field is gone"))
    assert runtime.client.lrange(landed, 0, -1) == [b"mine", word.encode() if isinstance(word, str) else word]
    assert runtime.client.lrange(always, 0, -1) == [b"theirs", b"mine", b"mine, once the field is gone"]
    assert runtime.store.get(run.id).replay_of == "mine, once the field is gone"
    [answer] = runtime.store.update_many([(run.id, change("theirs"), runtime.store.get(run.id), ())])
    assert answer is None and runtime.client.llen(landed) == 2  # batched writes check it too


def test_a_batch_bigger_than_one_script_call_lands_each_write_with_its_own_answer(runtime):
    """update_many writes many compare-and-sets per script call (WRITES_PER_CALL at most): each write keeps
    its own keys, arguments (JSON plan or one word each) and answer, across calls and whatever their sizes."""
    from jobs.store import WRITES_PER_CALL, SkipWrite

    runs = _create(runtime, "echo-background", WRITES_PER_CALL + 5)
    ns = runtime.settings.namespace
    runtime.store.update(runs[3].id, lambda current, pipe: setattr(current, "replay_of", "changed"))

    def change(n):
        def mutate(current, pipe):
            if n == 7:
                raise SkipWrite
            current.replay_of = f"write {n}"
            pipe.set(f"{ns}:t:{n}", b"\xff raw" if n % 2 else f"text {n}")
            return n

        return mutate

    changes = [
        (r.id, change(n), r.model_dump_json(), [runtime.store.keys.event(r.id)] * (n % 3)) for n, r in enumerate(runs)
    ]
    answers = runtime.store.update_many(changes)
    assert isinstance(answers[7], SkipWrite)
    assert [a for n, a in enumerate(answers) if n != 7] == [n for n in range(len(runs)) if n != 7]
    for n, r in enumerate(runs):
        stored = runtime.store.get(r.id)
        assert stored.replay_of == (None if n == 7 else f"write {n}")  # run 3's stale record was redone
        assert runtime.client.get(f"{ns}:t:{n}") == (None if n == 7 else b"\xff raw" if n % 2 else f"text {n}".encode())


def test_a_word_that_cannot_be_sent_fails_the_write_and_writes_nothing(runtime):
    """A lone surrogate is text no encoder can send: the change fails with redis-py's reason, before Redis sees it."""
    run = _create(runtime, "echo-background")[0]
    key = f"{runtime.settings.namespace}:surrogate"

    def bad(current, pipe):
        current.replay_of = "never"
        pipe.set(key, "half a pair: \udc80")

    with pytest.raises(UnicodeEncodeError):
        runtime.store.update(run.id, bad)
    assert runtime.client.get(key) is None
    assert runtime.store.get(run.id).replay_of is None
