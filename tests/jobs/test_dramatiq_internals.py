"""The assumptions about Dramatiq's private internals that ``jobs.broker.dramatiq_internals`` lists (A-G), checked
against the installed Dramatiq: through its real RedisBroker, consumer and worker on a real Redis.

After a Dramatiq upgrade, a failure here names the assumption that broke; fix that module (and nothing else)
before widening the range pinned in pyproject.toml.
"""

from __future__ import annotations

import inspect
import json
import time
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import dq_name

from jobs.broker import ACTOR, QUEUE, build_broker, build_worker, redis_message_id
from jobs.broker import dramatiq_internals as internals
from jobs.lifecycle import new_run
from jobs.runs import Result
from jobs.store import NoSlot
from tests.support.attempts import finish
from tests.support.procs import wait_for


def broke(letter: str, what: str) -> str:
    return f"Dramatiq {dramatiq.__version__} breaks assumption {letter} of jobs.broker.dramatiq_internals: {what}"


@pytest.fixture
def plain(redis_client: Any, namespace: str) -> RedisBroker:
    """Dramatiq's own RedisBroker, on the same Redis, in a namespace of its own."""
    broker = RedisBroker(client=redis_client, namespace=f"{namespace}-plain", middleware=[])
    broker.declare_queue(QUEUE)
    return broker


def _queued(client: Any, namespace: str, queue: str) -> dict[str, Any]:
    """What a queue holds: its keys' types, its list of ids, and the bodies stored under them (decoded JSON)."""
    key, hash_key = f"{namespace}:{queue}", f"{namespace}:{queue}.msgs"
    ids = [i.decode() for i in client.lrange(key, 0, -1)]
    bodies = {k.decode(): json.loads(v) for k, v in client.hgetall(hash_key).items()}
    return {"types": (client.type(key), client.type(hash_key)), "ids": ids, "bodies": bodies}


def _message(queue: str = QUEUE, *args: str) -> dramatiq.Message[Any]:
    return dramatiq.Message(queue_name=queue, actor_name=ACTOR, args=args, kwargs={}, options={})


def test_a_b_our_messages_are_laid_out_as_redis_broker_enqueue_writes_them(runtime, plain, redis_client):
    """A run's message (written by create_run.lua) and a later one (``enqueue_in``) against ``RedisBroker.enqueue``."""
    sent = plain.enqueue(_message(QUEUE, "run", "token"))
    theirs = _queued(redis_client, plain.namespace, QUEUE)
    assert theirs["types"] == (b"list", b"hash"), broke("A", f"a queue is no longer a list and a hash: {theirs}")
    assert theirs["ids"] == [redis_message_id(sent)] == sorted(theirs["bodies"]), broke(
        "A/B", f"enqueue no longer RPUSHes the redis_message_id and HSETs the body under it: {theirs}"
    )
    [their_body] = theirs["bodies"].values()

    run, _ = runtime.store.create(new_run(runtime.site.get("echo-background"), "api"), {})
    runtime.lifecycle.redispatch(run.id, run.token)  # a second message, queued by enqueue_in
    queue, hash_key = runtime.broker.queue_keys()
    assert (queue, hash_key) == (f"{runtime.settings.namespace}:{QUEUE}", f"{runtime.settings.namespace}:{QUEUE}.msgs")
    ours = _queued(redis_client, runtime.settings.namespace, QUEUE)
    assert ours["types"] == theirs["types"] and len(ours["ids"]) == 2 and sorted(ours["ids"]) == sorted(ours["bodies"])
    for message_id, body in ours["bodies"].items():
        assert body.keys() == their_body.keys(), broke("A", f"message fields differ: {body} vs {their_body}")
        assert body["options"].keys() == their_body["options"].keys() == {"redis_message_id"}
        assert redis_message_id(dramatiq.Message.decode(json.dumps(body).encode())) == message_id


def test_a_a_delayed_message_waits_beside_the_queue_until_its_time(runtime, plain, redis_client):
    """A retry's message (``enqueue_in`` with a delay) is written as an immediate one would be, but only its body:
    Dramatiq's fetch reads bodies by the ids it pops from the list, so the message is invisible to it until
    ``promote_later`` pushes its id, at its due time."""
    plain.enqueue(_message(QUEUE, "run", "token"))
    consumer = plain.consume(QUEUE, prefetch=5, timeout=100)
    redis_client.hset(f"{plain.namespace}:{QUEUE}.msgs", "not-on-the-list", _message(QUEUE, "x", "y").encode())
    fetched = [m for m in (next(consumer), next(consumer)) if m is not None]
    assert [m.args for m in fetched] == [("run", "token")], broke("A", f"a fetch read a body off the list: {fetched}")
    assert redis_client.hexists(f"{plain.namespace}:{QUEUE}.msgs", "not-on-the-list")

    run, _ = runtime.store.create(new_run(runtime.site.get("default-retries-background"), "api"), {})  # retry: 60 s
    runtime.lifecycle.claim(run.id, run.token, "w")
    redis_client.delete(runtime.broker.queue_keys()[0])
    retrying = finish(runtime, run.id, run.token, Result("error", error={"type": "E", "message": "x"}))
    assert retrying is not None and retrying.status == "retrying"
    later, bodies = runtime.broker.queue_keys(delayed=True)
    assert bodies == runtime.broker.queue_keys()[1] and later == f"{runtime.settings.namespace}:{QUEUE}.later"
    [(message_id, due)] = redis_client.zrange(later, 0, -1, withscores=True)
    assert message_id.decode() == retrying.message_id and due >= time.time() * 1000 + 59_000
    body = json.loads(redis_client.hget(bodies, retrying.message_id))
    assert body["queue_name"] == QUEUE and body["options"] == {"redis_message_id": retrying.message_id}
    assert not redis_client.exists(f"{runtime.settings.namespace}:{dq_name(QUEUE)}.msgs")
    assert not redis_client.llen(runtime.broker.queue_keys()[0])

    assert runtime.broker.promote_later(int(due) - 1) == (0, int(due))  # not yet
    assert runtime.broker.promote_later(int(due)) == (1, None)
    ours = runtime.broker.consume(QUEUE, prefetch=1, timeout=100)
    message = next(ours)
    assert redis_message_id(message) == retrying.message_id and message.args[:2] == (run.id, retrying.token)
    assert "eta" not in message.options


def test_c_a_fetched_message_waits_in_the_ack_set_until_acked(runtime, plain, redis_client):
    """Dramatiq's consumer fetches into ``<ns>:__acks__.<broker_id>.<queue>`` and its ack empties it; ``ack_in``
    does the same writes."""
    sent = plain.enqueue(_message(QUEUE, "run", "token"))
    consumer = plain.consume(QUEUE, prefetch=1, timeout=100)
    fetched = next(consumer)
    acks = f"{plain.namespace}:__acks__.{plain.broker_id}.{QUEUE}"
    assert redis_client.smembers(acks) == {redis_message_id(sent).encode()}, broke(
        "C", f"a fetched message's id is not in {acks!r}"
    )
    consumer.ack(fetched)
    assert not redis_client.exists(acks) and not redis_client.hlen(f"{plain.namespace}:{QUEUE}.msgs"), broke(
        "C", "ack no longer removes the id from the ack set and the body from the hash"
    )

    run, _ = runtime.store.create(new_run(runtime.site.get("echo-background"), "api"), {})
    ours = runtime.broker.consume(QUEUE, prefetch=1, timeout=100)
    message = next(ours)
    assert runtime.broker.acks_key() == f"{runtime.settings.namespace}:__acks__.{runtime.broker.broker_id}.{QUEUE}"
    assert redis_client.smembers(runtime.broker.acks_key()) == {run.message_id.encode()}
    with redis_client.pipeline() as pipe:
        runtime.broker.ack_in(pipe, message)
        pipe.execute()
    assert not redis_client.exists(runtime.broker.acks_key())
    assert not redis_client.hexists(runtime.broker.queue_keys()[1], run.message_id)


def test_d_the_wake_up_message_is_what_dramatiq_would_have_written(runtime, plain, redis_client):
    """compare_and_set.lua fills in the template made by ``Message.encode``; the result decodes as a message
    of the same shape as one sent through ``RedisBroker.enqueue``."""
    template = runtime.broker.wake_message
    for field in internals.WAKE_FIELDS:
        assert f"@{field}@".encode() in template, broke("D", f"@{field}@ is not verbatim in {template!r}")
    plain.enqueue(_message(QUEUE, "run", "token"))
    [their_body] = _queued(redis_client, plain.namespace, QUEUE)["bodies"].values()

    function = runtime.site.get("single-background")
    limit = {"single-background": 1}.get
    first, second = (runtime.store.create(new_run(function, "api"), {})[0] for _ in range(2))
    runtime.lifecycle.claim(first.id, first.token, "w", concurrency=limit)
    with pytest.raises(NoSlot):
        runtime.lifecycle.claim(second.id, second.token, "w", concurrency=limit)
    waiting = runtime.lifecycle.wait_for_slot(second.id, second.token, 30.0)
    redis_client.delete(runtime.broker.queue_keys()[0])  # from here on, only the wake-up
    finish(runtime, first.id, first.token, Result("ok"))  # frees the slot: wakes the waiting run
    [woken] = [i.decode() for i in redis_client.lrange(runtime.broker.queue_keys()[0], 0, -1)]
    raw = redis_client.hget(runtime.broker.queue_keys()[1], woken)
    body = json.loads(raw)
    assert body.keys() == their_body.keys() and body["options"].keys() == their_body["options"].keys()
    message = dramatiq.Message.decode(raw)
    assert (message.queue_name, message.actor_name, list(message.args)) == (QUEUE, ACTOR, [second.id, waiting.token])
    assert redis_message_id(message) == message.message_id == woken
    assert isinstance(message.message_timestamp, int) and abs(message.message_timestamp - time.time() * 1000) < 60_000


def test_d_an_encoding_without_the_fields_verbatim_is_refused_at_start_up(runtime, monkeypatch):
    monkeypatch.setattr(dramatiq.Message, "encode", lambda self: b"\x80binary")
    with pytest.raises(RuntimeError, match="assumption D"):
        build_broker(runtime.settings, runtime.client)


def test_e_the_consumer_has_the_shape_our_subclass_relies_on(runtime, redis_client):
    assert isinstance(RedisBroker.__dict__.get("consumer_class"), property), broke(
        "E", "RedisBroker.consumer_class is no longer the property consume() builds its consumer from"
    )
    params = list(inspect.signature(_RedisConsumer.__init__).parameters)
    assert params == ["self", "broker", "queue_name", "prefetch", "timeout"], broke("E", f"_RedisConsumer{params}")
    assert callable(getattr(RedisBroker, "_dispatch", None)), broke("E", "RedisBroker._dispatch is gone")
    for method in ("__next__", "ack", "nack", "requeue", "close"):
        assert callable(getattr(_RedisConsumer, method, None)), broke("E", f"_RedisConsumer.{method} is gone")

    runs = [runtime.store.create(new_run(runtime.site.get("echo-background"), "api"), {})[0] for _ in range(3)]
    batches: list[list[bytes]] = []
    runtime.broker.fetched = lambda data: batches.append(list(data))  # the consumer pops from the list it gets
    consumer = runtime.broker.consume(QUEUE, prefetch=2, timeout=100)
    assert type(consumer) is internals.consumer._BusyAwareConsumer
    first = next(consumer)
    assert [len(b) for b in batches] == [2], broke("E", "the consumer no longer fetches through broker.do_fetch")
    assert redis_message_id(first) == runs[0].message_id
    assert isinstance(consumer.message_cache, list) and len(consumer.message_cache) == 1, broke(
        "E", "fetched messages not yet handed out are no longer kept in consumer.message_cache"
    )
    assert isinstance(consumer.queued_message_ids, set) and first.message_id in consumer.queued_message_ids, broke(
        "E", "messages handed out are no longer tracked in consumer.queued_message_ids"
    )
    assert (consumer.prefetch, consumer.timeout, consumer.outstanding_message_count) == (2, 100, 2), broke(
        "E", "prefetch, timeout or outstanding_message_count changed meaning"
    )


def test_f_the_worker_prefetches_no_more_than_it_has_threads(runtime):
    broker = build_broker(runtime.settings, runtime.client)
    dramatiq.actor(actor_name=ACTOR, queue_name=QUEUE, broker=broker)(lambda *args: None)
    worker = build_worker(broker, 3, 100)
    worker.start()
    try:
        wait_for(lambda: QUEUE in worker.consumers, timeout=10, message="the runs queue's consumer")
        assert worker.consumers[QUEUE].prefetch == 3, broke("F", "Worker.queue_prefetch is not what consumers get")
    finally:
        worker.stop(timeout=5000)


def test_g_runs_fetched_ahead_wait_in_the_work_queue_as_the_consumers_proxies(runtime):
    """A run fetched ahead of a busy thread waits in ``Worker.work_queue`` as an item whose ``message`` is the
    proxy our consumer yielded (so its fetch time can be read), and the thread that takes it calls task_done."""
    import queue
    import threading

    from dramatiq.broker import MessageProxy

    broker = build_broker(runtime.settings, runtime.client)
    gate, seen = threading.Event(), []

    def actor(*args: Any) -> None:
        seen.append(args[0])
        gate.wait(10)

    dramatiq.actor(actor_name=ACTOR, queue_name=QUEUE, broker=broker)(actor)
    broker.ahead = lambda: 1  # its one thread is about to be free: fetch one more
    worker = build_worker(broker, 1, 100)
    assert isinstance(worker.work_queue, queue.PriorityQueue) and broker.work_queue is worker.work_queue, broke(
        "G", "Worker.work_queue is not a queue.PriorityQueue"
    )
    runs = [runtime.store.create(new_run(runtime.site.get("echo-background"), "api"), {})[0] for _ in range(2)]
    worker.start()
    try:
        wait_for(lambda: seen and worker.work_queue.qsize(), timeout=10, message="one run taken, one waiting")
        (item,) = list(worker.work_queue.queue)
        message = internals.consumer._work_message(item)
        assert isinstance(message, MessageProxy) and hasattr(message, "fetched_at"), broke(
            "G", f"a work queue item's message is not the consumer's proxy: {item!r}"
        )
        gate.set()
        wait_for(lambda: len(seen) == 2, timeout=10, message="the waiting run to be taken")
        assert seen == [r.id for r in runs]
        wait_for(lambda: worker.work_queue.unfinished_tasks == 0, timeout=10, message="task_done for each item")
    finally:
        gate.set()
        worker.stop(timeout=5000)


def test_nothing_else_in_the_project_relies_on_dramatiq_internals():
    """The seam stays one package: other code asks RunBroker (or uses Dramatiq's public API)."""
    root = Path(__file__).resolve().parents[2]
    private = [
        *("dramatiq.brokers", "dramatiq.common", "_RedisConsumer", "dq_name", "._dispatch(", "consumer_class"),
        *('["redis_message_id"]', "__acks__", ".msgs", "queue_prefetch", "message_cache", "work_queue"),
    ]
    seam = root / "jobs" / "broker" / "dramatiq_internals"
    found = [
        f"{path.relative_to(root)}: {word}"
        for package in ("backburner", "jobs", "scheduler", "api", "reports")
        for path in sorted((root / package).rglob("*"))
        if path.suffix in (".py", ".lua") and seam not in path.parents
        for word in private
        if word in path.read_text(encoding="utf-8")
    ]
    assert not found, f"Dramatiq internals used outside {seam.relative_to(root)}: {found}"


def test_a_hung_redis_is_a_connection_error_to_dramatiqs_consumer(runtime, redis_server):
    """Dramatiq's consumer thread logs a ConnectionError in one line and reconnects; anything else it logs as an
    "unexpected error" with a traceback. A fetch from a Redis that stopped answering times out: the same one line."""
    import os
    import signal

    from dramatiq.errors import ConnectionClosed

    from jobs.broker import connect_quick

    quick = connect_quick(runtime.settings, 0.3)
    runtime.store.create(new_run(runtime.site.get("echo-background"), "api"), {})
    consumer = build_broker(runtime.settings, quick).consume(QUEUE, prefetch=2, timeout=100)
    fetched = next(consumer)
    os.kill(redis_server.process.pid, signal.SIGSTOP)
    try:
        with pytest.raises(ConnectionClosed):
            for _ in range(100):  # the consumer may first linger for its busy thread (None), then fetch
                next(consumer)
        with pytest.raises(ConnectionClosed):  # and so are its acks, nacks and hand-backs
            consumer.nack(fetched)
        with pytest.raises(ConnectionClosed):
            consumer.ack(fetched)
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)
        quick.close()
