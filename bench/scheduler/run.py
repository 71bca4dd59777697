"""Scheduler lag: from a tick's scheduled instant to its run starting on an idle worker.

Starts an embedded Redis, one `backburner worker` and one `backburner scheduler` with a per-second
schedule (BACKBURNER_TEST_SCHEDULES: a seconds field exists for tests and this harness only), lets
``--ticks`` ticks happen, then prints p50/p90/p99/max of

    fire lag   run.created_at - run.scheduled_for   (scheduler: APScheduler wake-up + Redis writes)
    start lag  run.started_at - run.scheduled_for   (the above + the worker's queue poll + claim)

plus duplicate and missing ticks. Target: start lag p99 < 250 ms. Nothing is written to disk but the
temporary Redis data. Usage::

    python bench/scheduler/run.py [--ticks 200] [--worker-poll-ms 100] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from backburner.redis_server import RedisServer  # noqa: E402
from jobs import clock  # noqa: E402
from jobs.keys import Keys  # noqa: E402
from jobs.runs import Run  # noqa: E402

NAMESPACE = "bench"
TOML = """
[functions]
  directory = "netlify/functions"

[functions."tick"]
  schedule = "* * * * *"

[backburner.functions."tick"]
  overlap = "allow"
"""
HANDLER = "def handler(event, context):\n    return {'statusCode': 200, 'body': 'tick'}\n"
WORKER_MAIN = """
import signal, sys, threading
from jobs.settings import Settings
from jobs.worker import WorkerProcess
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: stop.set())
process = WorkerProcess(Settings(), threads=2, poll_ms=int(sys.argv[1])).start()
stop.wait()
process.stop(5)
"""


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (no interpolation: every figure is a measured lag)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values, 50), 1),
        "p90_ms": round(percentile(values, 90), 1),
        "p99_ms": round(percentile(values, 99), 1),
        "max_ms": round(max(values), 1),
    }


def make_site(root: Path) -> Path:
    folder = root / "netlify" / "functions"
    folder.mkdir(parents=True)
    (folder / "tick.py").write_text(HANDLER)
    (root / "netlify.toml").write_text(textwrap.dedent(TOML))
    return root


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=out, start_new_session=True, cwd=ROOT)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)
    return value


def runs(client: redis.Redis, keys: Keys) -> list[Run]:
    ids = [i.decode() for i in client.zrange(keys.function_runs("tick"), 0, -1)]
    raws = client.mget([keys.run(i) for i in ids]) if ids else []
    return [Run.model_validate_json(raw) for raw in raws if raw]


def measure(ticks: int, warmup: int, poll_ms: int | None, work: Path) -> dict[str, Any]:
    server = RedisServer(work / "redis").start()
    client, keys = redis.Redis.from_url(server.url), Keys(NAMESPACE)
    site = make_site(work / "site")
    env = {
        **os.environ,
        "REDIS_URL": server.url,
        "BACKBURNER_NAMESPACE": NAMESPACE,
        "BACKBURNER_SITE": str(site),
        "BACKBURNER_DEV": "1",
        "BACKBURNER_TEST_SCHEDULES": json.dumps({"tick": "* * * * * *"}),
        "PYTHONPATH": str(ROOT),
    }
    python = sys.executable
    if poll_ms is None:
        worker_args = [python, "-m", "backburner", "worker", "--site", str(site), "--threads", "2"]
    else:
        worker_args = [python, "-c", WORKER_MAIN, str(poll_ms)]
    worker = spawn(worker_args, env, work / "worker.log")
    scheduler = None
    try:
        wait(lambda: client.zcard(keys.workers), 60, "the worker's heartbeat")
        scheduler = spawn([python, "-m", "backburner", "scheduler", "--site", str(site)], env, work / "scheduler.log")
        total = ticks + warmup
        began = time.monotonic()
        while len(found := runs(client, keys)) < total:
            if time.monotonic() - began > total + 60:
                raise SystemExit(f"only {len(found)} runs after {total + 60} s; see {work}")
            if sys.stderr.isatty():
                print(f"\r{len(found)}/{total} ticks", end="", file=sys.stderr, flush=True)
            time.sleep(1)
        stop(scheduler)
        wait(lambda: all(r.status == "succeeded" for r in runs(client, keys)), 60, "the last runs")
        found = runs(client, keys)
    finally:
        for proc in (scheduler, worker):
            if proc is not None:
                stop(proc)
        server.stop()
    instants = sorted(clock.parse_iso(r.scheduled_for) for r in found if r.scheduled_for)
    distinct = sorted(set(instants))
    missing = sum((b - a) // timedelta(seconds=1) - 1 for a, b in zip(distinct, distinct[1:], strict=False))
    measured = sorted(found, key=lambda r: r.scheduled_for or "")[warmup:]

    def lag(run: Run, field: str) -> float:
        moment = getattr(run, field)
        return (clock.parse_iso(moment) - clock.parse_iso(run.scheduled_for or "")).total_seconds() * 1000

    start_lags = [lag(r, "started_at") for r in measured if r.started_at]
    return {
        "ticks_measured": len(start_lags),
        "warmup_ticks_excluded": warmup,
        "worker_poll_ms": poll_ms or 100,
        "fire_lag": summary([lag(r, "created_at") for r in measured]),
        "start_lag": summary(start_lags),
        "start_lag_over_250ms": sum(1 for value in start_lags if value > 250),
        "duplicates": len(instants) - len(distinct),
        "missing_ticks": missing,
        "failed_runs": sum(1 for r in found if r.status != "succeeded"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ticks", type=int, default=200, help="per-second ticks to measure (default 200)")
    parser.add_argument("--warmup", type=int, default=3, help="first ticks left out (warm child start)")
    parser.add_argument("--worker-poll-ms", type=int, default=None, help="idle queue poll (stock worker: 100)")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-scheduler-") as work:
        result = measure(args.ticks, args.warmup, args.worker_poll_ms, Path(work))
    if not args.json:
        fire, start = result["fire_lag"], result["start_lag"]
        print(f"ticks measured: {result['ticks_measured']} (worker poll {result['worker_poll_ms']} ms)")
        print(
            f"fire lag  (created - scheduled): p50 {fire['p50_ms']} ms, "
            f"p99 {fire['p99_ms']} ms, max {fire['max_ms']} ms"
        )
        print(
            f"start lag (started - scheduled): p50 {start['p50_ms']} ms, p90 {start['p90_ms']} ms, "
            f"p99 {start['p99_ms']} ms, max {start['max_ms']} ms ({result['start_lag_over_250ms']} over 250 ms)"
        )
        print(
            f"duplicates: {result['duplicates']}, missing ticks: {result['missing_ticks']}, "
            f"failed: {result['failed_runs']}"
        )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
