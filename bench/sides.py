"""The three sides bench/spine.py compares, each running the same no-op handler (one INCR) on one Redis.

- ``Backburner``: ``backburner worker --processes P --threads T``: every attempt in a warm, killable child,
  run records written durably (start and outcome), fencing tokens, recorder and reaper.
- ``RawDramatiq``: P processes of a plain Dramatiq worker with T threads each, no isolation, no records.
- ``Celery``: P Celery prefork workers with T pool processes each (Celery's defaults: acks on receipt,
  prefetch multiplier 4; results ignored).

Each side starts its workers, warms them up, and then offers ``drain`` (a backlog made to appear at once;
the clock runs until every handler has run and, for the two that acknowledge afterwards, every message
is acknowledged or recorded) and ``latency`` (one trigger at a time on an idle worker: from the client's
clock just before the trigger to the handler's first line, on the same host's clock).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"


def _cpu(pids: list[int], worker_names: tuple[str, ...]) -> dict[str, float]:
    """CPU seconds so far of ``pids`` and their descendants, grouped: Redis, children (attempt or pool
    processes), the workers themselves (roots, or processes whose command line holds one of ``worker_names``)."""
    import psutil

    groups = {"worker": 0.0, "children": 0.0, "redis": 0.0}
    seen: set[int] = set()
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for proc in procs:
            if proc.pid in seen:
                continue
            seen.add(proc.pid)
            try:
                times = proc.cpu_times()
                command = " ".join(proc.cmdline())
            except psutil.NoSuchProcess:
                continue
            if "redis-server" in command:
                group = "redis"
            elif proc.pid == pid or any(name in command for name in worker_names):
                group = "worker"
            else:
                group = "children"
            groups[group] += times.user + times.system
    return groups


class Side:
    name = ""
    worker_names: tuple[str, ...] = ()

    def __init__(self, server: Any, processes: int, threads: int) -> None:
        self.server = server
        self.client = redis.Redis.from_url(server.url)
        self.processes, self.threads = processes, threads
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ns = f"bench-{self.name}"
        self.env = {**os.environ, "REDIS_URL": server.url, "BENCH_NAMESPACE": self.ns}
        self.count_key = f"{self.ns}:bench:count"

    # -- what each side implements ------------------------------------------------------------

    def launch(self) -> None:
        raise NotImplementedError

    def prepare(self, total: int) -> Any:
        """Everything needed to make ``total`` runs appear at once, built before the clock starts."""
        raise NotImplementedError

    def release(self, prepared: Any) -> None:
        """Make the prepared runs appear (timed)."""
        raise NotImplementedError

    def settled(self) -> bool:
        """Every message acknowledged (or recorded), beyond every handler having run."""
        return True

    def trigger(self, started: str) -> None:
        raise NotImplementedError

    # -- shared --------------------------------------------------------------------------------

    def __enter__(self) -> Side:
        stale = self.client.keys(f"{self.ns}*")
        if stale:
            self.client.delete(*stale)
        self.launch()
        self.drain(4 * self.processes * self.threads, timeout=60)  # warm: children forked, modules imported
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def pids(self) -> list[int]:
        assert self.server.process is not None
        return [p.pid for p in self.procs] + [self.server.process.pid]

    def drain(self, total: int, timeout: float = 300) -> tuple[float, dict[str, float]]:
        """Runs per second through a backlog of ``total``, and CPU ms per run by group."""
        self.client.set(self.count_key, 0)
        prepared = self.prepare(total)
        before = _cpu(self.pids(), self.worker_names)
        started = time.perf_counter()
        self.release(prepared)
        deadline = time.monotonic() + timeout
        while int(self.client.get(self.count_key) or 0) < total or not self.settled():
            if time.monotonic() > deadline:
                ran = int(self.client.get(self.count_key) or 0)
                raise RuntimeError(f"{self.name}: {ran} of {total} ran in {timeout} s")
            time.sleep(0.002)
        rate = total / (time.perf_counter() - started)
        after = _cpu(self.pids(), self.worker_names)
        return rate, {name: (after[name] - before[name]) * 1000 / total for name in after}

    def latency(self, samples: int, idle_s: tuple[float, float] = (0.05, 0.15)) -> list[float]:
        """Trigger-to-start times (ms) of ``samples`` runs, one at a time, each after an idle pause."""
        key = f"{self.ns}:bench:started"
        found = []
        for _ in range(samples):
            time.sleep(random.uniform(*idle_s))  # idle time, so the worker is waiting when the trigger comes
            t0 = time.time()
            self.trigger(key)
            reply = self.client.blpop([key], timeout=30)
            if reply is None:
                raise RuntimeError(f"{self.name}: a triggered run did not start within 30 s")
            found.append((float(reply[1]) - t0) * 1000)
        return found


class Backburner(Side):
    name = "backburner"
    worker_names = ("backburner worker",)

    def launch(self) -> None:
        from jobs.keys import Keys
        from jobs.settings import Settings
        from jobs.wiring import open_runtime

        self.runtime = open_runtime(Settings(redis_url=self.server.url, site=ROOT, namespace=self.ns, dev=True))
        self.function = self.runtime.site.get("noop-background")
        self.keys = Keys(self.ns)
        command = [sys.executable, "-m", "backburner", "worker", "--processes", str(self.processes),
                   "--threads", str(self.threads)]  # fmt: skip
        cwd = self.tree if isinstance(self, Before) else ROOT  # `python -m` imports from its working folder first
        self.procs.append(subprocess.Popen(command, env=self.worker_env(), cwd=cwd, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 60
        while self.client.zcard(self.keys.workers) < self.processes:
            if time.monotonic() > deadline:
                raise RuntimeError("backburner workers did not start")
            time.sleep(0.05)

    def worker_env(self) -> dict[str, str]:
        return {**self.env, "BACKBURNER_SITE": str(ROOT), "BACKBURNER_DEV": "1", "BACKBURNER_NAMESPACE": self.ns}

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self.runtime.close()

    def prepare(self, total: int) -> Any:
        from jobs.lifecycle import new_run

        store = self.runtime.store
        pipe = self.client.pipeline(transaction=False)
        for _ in range(total):
            keys, args = store._create_call(new_run(self.function, "api"), {}, None)
            store._create(keys=keys, args=args, client=pipe)
        return pipe

    def release(self, prepared: Any) -> None:
        prepared.execute()

    def settled(self) -> bool:
        return self.client.zcard(self.keys.active) == 0

    def trigger(self, started: str) -> None:
        from jobs.lifecycle import new_run

        self.runtime.store.create(new_run(self.function, "api"), {"started": started})


class Before(Backburner):
    """Backburner as of another commit (``spine.py --before REV``): its worker runs from a copy of that tree,
    fed by this tree's client (run records and messages are laid out alike on both sides)."""

    name = "before"
    tree: Path | None = None

    def worker_env(self) -> dict[str, str]:
        assert self.tree is not None
        return {**super().worker_env(), "PYTHONPATH": str(self.tree)}


class RawDramatiq(Side):
    name = "dramatiq"
    worker_names = ("_baseline.py",)

    def launch(self) -> None:
        command = [sys.executable, str(BENCH / "_baseline.py"), "worker", str(self.threads)]
        self.procs += [subprocess.Popen(command, env=self.env) for _ in range(self.processes)]
        import dramatiq
        from dramatiq.brokers.redis import RedisBroker

        self.broker = RedisBroker(client=self.client, namespace=self.ns)
        self.broker.declare_queue("noop")
        self.dramatiq = dramatiq

    def _message(self, n: int, **kwargs: Any) -> Any:
        return self.dramatiq.Message(queue_name="noop", actor_name="noop", args=(), kwargs=kwargs,
                                     options={"redis_message_id": f"m{n}-{random.getrandbits(64):x}"})  # fmt: skip

    def prepare(self, total: int) -> Any:
        pipe = self.client.pipeline(transaction=True)
        for n in range(total):
            message = self._message(n)
            pipe.hset(f"{self.ns}:noop.msgs", message.options["redis_message_id"], message.encode())
            pipe.rpush(f"{self.ns}:noop", message.options["redis_message_id"])
        return pipe

    def release(self, prepared: Any) -> None:
        prepared.execute()

    def settled(self) -> bool:
        return self.client.hlen(f"{self.ns}:noop.msgs") == 0

    def trigger(self, started: str) -> None:
        self.broker.enqueue(self._message(0, started=started))


class Celery(Side):
    name = "celery"
    worker_names = ()  # the roots are the workers; their pool processes are the children

    def launch(self) -> None:
        sys.path.insert(0, str(BENCH))
        os.environ["REDIS_URL"], os.environ["BENCH_NAMESPACE"] = self.server.url, self.ns
        try:
            import _celery  # type: ignore[import-not-found]
        except ModuleNotFoundError as exc:
            raise SystemExit(
                f"the Celery baseline needs {exc.name}: .venv/bin/pip install -e '.[bench]' "
                "(or leave it out: --sides backburner,dramatiq)"
            ) from None

        self.task = _celery.noop
        self.hold = f"{self.ns}-hold"
        for n in range(self.processes):
            command = [sys.executable, "-m", "celery", "-A", "_celery", "worker", "--pool", "prefork",
                       "--concurrency", str(self.threads), "-Q", self.ns, "-n", f"bench{n}@%h", "--loglevel",
                       "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip
            self.procs.append(
                subprocess.Popen(command, env=self.env, cwd=BENCH, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )

    def prepare(self, total: int) -> Any:
        """Sent to a queue no worker reads; ``release`` renames it onto the workers' queue in one step."""
        self.client.delete(self.hold)
        with self.task.app.producer_or_acquire() as producer:
            for _ in range(total):
                self.task.apply_async(queue=self.hold, producer=producer)
        return None

    def release(self, prepared: Any) -> None:
        self.client.rename(self.hold, self.ns)

    def trigger(self, started: str) -> None:
        self.task.apply_async(kwargs={"started": started})


SIDES: dict[str, type[Side]] = {"backburner": Backburner, "before": Before, "dramatiq": RawDramatiq, "celery": Celery}
