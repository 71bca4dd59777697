"""Seed a believable run history straight into Redis (finished runs spread over past hours), for page tests
that need thousands of runs and for the dashboard screenshots. Records are real ``Run`` models, written the
way the store indexes them; no messages are queued, so no worker will pick them up."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta

from jobs import clock
from jobs.event import payload_event
from jobs.runs import AttemptInfo, ErrorInfo, Progress, Run

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

#: function -> (typical seconds, failure rate)
PROFILES = {
    "nightly-report-background": (42.0, 0.04),
    "sync-crm-background": (6.0, 0.12),
    "thumbnails-background": (1.2, 0.02),
    "send-digest-background": (14.0, 0.06),
}
ERRORS = [
    ("TimeoutError", "upstream API did not answer within 10 s"),
    ("KeyError", "'customer_id'"),
    ("ConnectionError", "Connection reset by peer"),
]


def ulid_at(ms: int, rng: random.Random) -> str:
    value = (ms << 80) | rng.getrandbits(80)
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def _iso(moment: datetime) -> str:
    return clock.iso(moment)


def seed_runs(runtime, count: int, *, hours: float = 24, profiles=None, seed: int = 7) -> list[str]:
    """Write ``count`` finished runs created over the last ``hours``; returns their ids, newest first."""
    rng = random.Random(seed)
    profiles = profiles or PROFILES
    names = list(profiles)
    keys, client = runtime.store.keys, runtime.client
    now_ms = int(time.time() * 1000) - 60_000
    ids = []
    pipe = client.pipeline(transaction=False)
    for _ in range(count):
        name = rng.choice(names)
        typical, failure_rate = profiles[name]
        created_ms = now_ms - int(rng.random() ** 0.8 * hours * 3600 * 1000)
        run_id = ulid_at(created_ms, rng)
        created = datetime.fromtimestamp(created_ms / 1000, UTC)
        scheduled = "sync" in name or "report" in name
        triggers = ["schedule", "schedule", "schedule", "api"] if scheduled else ["http", "api"]
        roll = rng.random()
        status = "failed" if roll < failure_rate else "cancelled" if roll < failure_rate + 0.02 else "succeeded"
        attempts, at = [], created + timedelta(milliseconds=rng.randint(20, 400))
        tries = 3 if status == "failed" else (2 if rng.random() < 0.08 else 1)
        for n in range(1, tries + 1):
            seconds = max(0.05, rng.lognormvariate(0, 0.5) * typical)
            end = at + timedelta(seconds=seconds)
            outcome = "failed" if n < tries or status == "failed" else status
            kind, message = rng.choice(ERRORS)
            error = None if outcome != "failed" else ErrorInfo(type=kind, message=message)
            attempts.append(
                AttemptInfo(
                    n=n, started_at=_iso(at), finished_at=_iso(end), outcome=outcome, error=error, worker="web-1:4242"
                )
            )
            at = end + timedelta(seconds=60 * n)
        finished = attempts[-1].finished_at
        run = Run(
            id=run_id, function=name, trigger=rng.choice(triggers), status=status,
            created_at=_iso(created), started_at=attempts[0].started_at, finished_at=finished, attempt=tries,
            max_attempts=3, attempts=attempts, time_limit_s=900, retry_delays_s=[60, 120],
            progress=Progress(done=100, total=100, message="done") if status == "succeeded" else Progress(),
            result={"rows": rng.randint(10, 5000)} if status == "succeeded" else None,
            error=attempts[-1].error,
        )  # fmt: skip
        pipe.set(keys.run(run_id), run.model_dump_json())
        pipe.set(keys.event(run_id), json.dumps(payload_event(name, {"batch": rng.randint(1, 99)})))
        pipe.zadd(keys.runs, {run_id: 0})
        pipe.zadd(keys.function_runs(name), {run_id: 0})
        ids.append(run_id)
    pipe.execute()
    return sorted(ids, reverse=True)
