"""Does nothing but one INCR, quickly: used by the benchmarks to measure Backburner's own overhead.

The baselines in bench/ run the same handler (bench/_baseline.py, bench/_celery.py). With ``started`` in
the event it first records when it started (epoch seconds), for the trigger-to-start latency.
"""

import time


def handler(event, context):
    started = time.time()
    if context.redis is None:
        return None
    if event.get("started"):
        context.redis.rpush(event["started"], started)
    context.redis.incr(f"{context.keys.ns}:bench:count")
    return None
