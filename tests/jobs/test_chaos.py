"""Chaos: 300 runs of mixed behaviour (more if they drain before six kills) while workers are SIGKILLed every couple
of seconds and Redis is killed and restarted once. Every run ends in its expected final status, with exactly one final
webhook; no process of any attempt is left behind; Redis memory stays bounded. Time is compressed through
configuration only."""

from __future__ import annotations

import collections
import contextlib
import itertools
import json
import random
import time
from pathlib import Path

import psutil
import pytest

from tests.support.http import Received, WebhookReceiver
from tests.support.procs import WorkerProc, wait_for
from tests.support.redis import RedisServer
from tests.support.sites import make_site

MARKER = "backburner-chaos-leak"
FUNCTIONS = {
    "ok-background": """
        import time
        def handler(event, context):
            time.sleep(0.3)
            return {"attempt": context.attempt}
    """,
    "flaky-background": """
        import time
        def handler(event, context):
            time.sleep(0.05)
            if context.attempt == 1:
                raise RuntimeError("first attempts fail")
            return {"attempt": context.attempt}
    """,
    "doomed-background": """
        def handler(event, context):
            raise ValueError(f"always fails (attempt {context.attempt})")
    """,
    "slow-background": """
        import time
        def handler(event, context):
            time.sleep(60)
    """,
    "crash-background": """
        import os
        def handler(event, context):
            os._exit(9)
    """,
    "leak-background": f"""
        import subprocess, sys, time
        def handler(event, context):
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "{MARKER}"])
            time.sleep(0.1)
            return {{"leaked": True}}
    """,
    "hog-background": """
        import time
        def handler(event, context):
            held = bytearray(300 << 20)
            time.sleep(60)
    """,
    "flood-background": """
        def handler(event, context):
            for n in range(20000):
                print("flood", n)
            return {"printed": 20000}
    """,
}
#: How many runs of each, and the status each must end in.
PLAN = {
    "ok-background": (120, "succeeded"),
    "flaky-background": (40, "succeeded"),
    "doomed-background": (30, "failed"),
    "slow-background": (20, "failed"),
    "crash-background": (30, "failed"),
    "leak-background": (30, "succeeded"),
    "hog-background": (6, "failed"),
    "flood-background": (24, "succeeded"),
}
TOML = """
[backburner]
  on_success = ["{hook}"]
  on_failure = ["{hook}"]

[backburner.functions."*-background"]
  retries = ["0.1s", "0.1s", "0.1s", "0.1s", "0.1s"]   # room for attempts lost to killed workers

[backburner.functions."doomed-background"]
  retries = ["0.1s"]

[backburner.functions."crash-background"]
  retries = ["0.1s"]

[backburner.functions."slow-background"]
  time_limit = "0.5s"
  retries = ["0.1s"]

[backburner.functions."hog-background"]
  memory_limit = "150MB"
  retries = []
"""


@pytest.fixture
def redis_server(tmp_path: Path):
    """A private Redis: this test kills it."""
    with RedisServer(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def workers():
    """Every worker the test starts (the last two are the running ones); all stopped, even after a failure."""
    started: list[WorkerProc] = []
    yield started
    for worker in started:
        worker.stop()


@pytest.fixture
def hook():
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def site(tmp_path: Path, hook: WebhookReceiver) -> Path:
    return make_site(tmp_path / "site", FUNCTIONS, TOML.format(hook=hook.url))


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    return {
        **env,
        "BACKBURNER_WEBHOOK_ALLOW": "127.0.0.1",
        "BACKBURNER_WEBHOOK_RETRIES": "0.2s,0.5s,1s,2s,2s,2s,2s,2s",
        "BACKBURNER_OUTBOX_POLL_INTERVAL": "0.1",
        "BACKBURNER_OUTBOX_LEASE": "3",
        "BACKBURNER_WEBHOOK_TIMEOUT": "0.5",  # a claim lost with a killed worker comes back 30 s after the timeout
    }


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def leaks() -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if MARKER in " ".join(process.info["cmdline"] or ()) and alive(process):
            found.append(process)
    return found


@pytest.mark.slow
def test_chaos(site, env, client, runtime, redis_server, hook, workers, tmp_path):
    rng = random.Random(14)
    plan = [name for name, (count, _) in PLAN.items() for _ in range(count)]
    rng.shuffle(plan)
    expected: dict[str, str] = {}
    tree: set[psutil.Process] = set()  # every process a worker had, looked at just before it was killed
    store = runtime.store

    def start() -> None:
        workers.append(WorkerProc(site, env, threads=4, output=tmp_path / f"worker-{len(workers)}.log").start())

    def busy(worker: WorkerProc) -> bool:
        """Whether the worker is in the middle of an attempt (its id, host:pid:tag, is on a running run)."""
        with contextlib.suppress(Exception):  # Redis may be restarting
            records = store.client.mget([store.keys.run(i) for i in store.active_ids()])
            return any(raw and f":{worker.pid}:" in (json.loads(raw).get("worker") or "") for raw in records)
        return False

    def trigger(name: str, key: str) -> None:
        while True:  # a 503 (Redis restarting) means not accepted: ask again, with the same key
            answer = client.post(f"/.netlify/functions/{name}", json={}, headers={"idempotency-key": key})
            if answer.status_code == 202:
                expected[answer.headers["x-nf-request-id"]] = PLAN[name][1]
                return
            assert answer.status_code == 503, answer.text
            time.sleep(0.1)

    start()
    start()
    kills, restarted, pending, last_kill = 0, False, list(enumerate(plan)), time.monotonic()
    extra = itertools.count(len(plan))  # more runs when the plan drains before the kills are done
    deadline = time.monotonic() + 180
    # Kills past the sixth are a bonus, taken only while runs are under way and time is left.
    while pending or kills < 6 or (kills < 8 and store.active_ids() and time.monotonic() < deadline - 10):
        assert time.monotonic() < deadline, f"only {kills} workers killed in the middle of an attempt"
        if not pending and kills < 6 and len(store.active_ids()) < 8:
            pending = [(next(extra), "ok-background") for _ in range(8)]
        batch, pending = pending[:20], pending[20:]
        for n, name in batch:
            trigger(name, f"chaos-{n}")
        victim = workers[-2]  # the older of the two running workers, once it is in the middle of an attempt
        if time.monotonic() - last_kill > 2 and busy(victim):
            with contextlib.suppress(psutil.NoSuchProcess):
                tree.update(psutil.Process(victim.pid).children(recursive=True))
            victim.kill()
            workers.insert(0, workers.pop(-2))
            start()
            kills, last_kill = kills + 1, time.monotonic()
        if not restarted and kills == 3:
            redis_server.restart(kill=True)  # SIGKILL: only what reached the append-only file survives
            restarted = True
        time.sleep(0.3)
    assert kills >= 6 and restarted and len(expected) >= len(plan)
    timeline = [("chaos", time.monotonic())]

    def all_final() -> bool:
        statuses = runtime.store.client.mget([runtime.store.keys.run(i) for i in expected])
        return all(raw and json.loads(raw)["status"] in ("succeeded", "failed", "cancelled") for raw in statuses)

    wait_for(all_final, timeout=120, interval=0.5, message="every run to reach a final status")
    timeline.append(("final", time.monotonic()))
    runs = {run_id: client.get(f"/api/runs/{run_id}").json() for run_id in expected}
    wrong = {
        i: (run["function"], run["status"], expected[i]) for i, run in runs.items() if run["status"] != expected[i]
    }
    assert not wrong
    outcomes = collections.Counter(a["outcome"] for run in runs.values() for a in run["attempts"])
    errors = collections.Counter(a["error"]["type"] for run in runs.values() for a in run["attempts"] if a["error"])
    print(f"chaos: {len(expected)} runs, {kills} workers killed, Redis restarted once; attempts {dict(outcomes)}")
    print(f"chaos: errors {dict(errors)}")
    assert outcomes["lost"] >= 1  # the kills did land in the middle of attempts
    assert {"MemoryLimitExceeded", "TimeLimitExceeded", "ProcessCrashed", "RuntimeError"} <= set(errors)

    def delivered() -> list[Received]:
        """Whole requests: a worker killed while sending leaves a cut one, and that delivery is sent again."""
        return [r for r in hook.requests if len(r.body) == int(r.headers.get("content-length") or -1)]

    def webhook_ids() -> dict[str, set[str]]:
        ids: dict[str, set[str]] = collections.defaultdict(set)
        for request in delivered():
            ids[json.loads(request.body)["data"]["id"]].add(request.headers["webhook-id"])
        return ids

    wait_for(lambda: set(webhook_ids()) >= set(expected), timeout=60, interval=0.5, message="a webhook for every run")
    timeline.append(("webhooks", time.monotonic()))
    for request in delivered():  # redelivered (at least once), but one event per run, saying how it ended
        body = json.loads(request.body)
        assert body["data"]["id"] in expected, body
        assert body["type"] == f"run.{expected[body['data']['id']]}", body
    assert all(len(ids) == 1 for ids in webhook_ids().values()), webhook_ids()

    for worker in workers:
        worker.stop()
    for worker in workers:
        assert worker.process is not None and worker.process.poll() is not None, worker.pid
        with contextlib.suppress(psutil.NoSuchProcess):
            tree.update(psutil.Process(worker.pid).children(recursive=True))
    timeline.append(("stopped", time.monotonic()))
    wait_for(lambda: not [p for p in tree if alive(p)] and not leaks(), timeout=20, message="no process left behind")
    timeline.append(("clean", time.monotonic()))
    print("chaos timeline:", ", ".join(f"{name} +{at - timeline[0][1]:.1f}s" for name, at in timeline))

    memory = runtime.store.client.info("memory")["used_memory"]
    print(f"chaos: Redis uses {memory / (1 << 20):.1f} MB; {len(hook.requests)} webhook requests")
    assert memory < 64 << 20, memory
    assert max(runtime.store.client.llen(runtime.store.keys.logs(i)) for i in expected) <= 5000
