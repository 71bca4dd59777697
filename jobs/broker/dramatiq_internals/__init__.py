"""RunBroker and its consumer: every place Backburner relies on Dramatiq below its public API.

    broker.py    RunBroker (A-D): messages written and acked inside run writes; build_broker, build_worker
    consumer.py  the runs queue's consumer (E-G): fetching for free threads, and ahead of busy ones

A run record and its message must land together ("accepted" means both are durable), so Backburner writes
Dramatiq's messages itself, inside the scripts that write run records, and it steers how a worker fetches.
Dramatiq publishes neither, so this package leans on its private internals; nothing else in the project may.
Each assumption is checked by ``tests/jobs/test_dramatiq_internals.py``, which names the one that broke.
The Dramatiq versions they were checked against are pinned in ``pyproject.toml``.

A. Redis layout (``dramatiq/brokers/redis/dispatch.lua``): queue ``q`` is a list ``<ns>:q`` of message ids
   and a hash ``<ns>:q.msgs`` of id -> encoded message; "enqueue" is ``HSET`` then ``RPUSH``; a fetch takes
   ids from the list's head and reads their bodies, and ignores bodies whose id is not on the list.
   (Dramatiq's delay queue, ``dq_name(q)``, is no longer written: a delayed message's body waits in the
   hash and its id in Backburner's own sorted set until its time; see ``RunBroker.enqueue_in``. A
   worker still consumes that delay queue, for messages written by an older version.)
B. A message's Redis id is its ``redis_message_id`` option, not its ``message_id``.
C. A fetched id waits in the set ``<ns>:__acks__.<broker_id>.<q>``; "ack" is ``SREM`` from it, then ``HDEL``
   of the body; "requeue" moves ids from it back to the list. Dramatiq makes a new consumer (same broker id)
   after a connection error, and puts a broker's ids back only once its heartbeat is stale.
D. ``Message.encode()`` writes JSON in which string fields appear verbatim (the wake-up message that
   ``compare_and_set.lua`` fills in is made from it).
E. ``RedisBroker.consumer_class`` builds the consumer; ``_RedisConsumer`` keeps ``message_cache``,
   ``queued_message_ids``, ``prefetch``, ``timeout`` and ``outstanding_message_count``, and fetches with
   ``broker.do_fetch(queue, count)``; ``RedisBroker._dispatch("fetch")`` runs dispatch.lua's "fetch";
   ``_RedisConsumer.__next__`` pops ``message_cache`` first and fetches only when it is empty.
F. ``dramatiq.Worker`` reads ``queue_prefetch`` when it starts its consumers.
G. ``dramatiq.Worker.work_queue`` is the queue.PriorityQueue its threads take messages from; an item holds the
   MessageProxy the consumer yielded (``(priority, message)`` before Dramatiq 2.2, ``_WorkQueueItem.message``
   since); a thread calls ``task_done()`` per item.
"""

from .broker import (
    ACTOR,
    PROMOTE_BATCH,
    SNAPSHOT_LIMIT,
    WAKE_FIELDS,
    RunBroker,
    build_broker,
    build_worker,
    new_message_id,
    redis_message_id,
)
from .consumer import AHEAD_LIMIT, QUEUE

__all__ = [
    "ACTOR",
    "AHEAD_LIMIT",
    "PROMOTE_BATCH",
    "QUEUE",
    "SNAPSHOT_LIMIT",
    "WAKE_FIELDS",
    "RunBroker",
    "build_broker",
    "build_worker",
    "new_message_id",
    "redis_message_id",
]
