"""Spine benchmarks, each side by side with a plain-Dramatiq baseline on the same embedded Redis.

python bench/spine.py accept   # 202s per second: noop-background vs FastAPI + one Dramatiq send()
python bench/spine.py runs     # no-op runs completed per second vs a raw Dramatiq no-op actor (--sweep: more shapes)
python bench/spine.py all
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backburner.redis_server import RedisServer, free_port  # noqa: E402


def wait_port(port: int, timeout: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


async def _load(port: int, path: str, total: int, concurrency: int) -> float:
    """Send ``total`` POSTs over ``concurrency`` keep-alive connections; return requests per second."""
    request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n"
               "Content-Type: application/json\r\n\r\n{}").encode()  # fmt: skip
    remaining = total

    async def connection() -> None:
        nonlocal remaining
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while remaining > 0:
            remaining -= 1
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 202"):
                raise RuntimeError(head.decode(errors="replace"))
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if length:
                await reader.readexactly(length)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return total / (time.perf_counter() - started)


def load(port: int, path: str, total: int, concurrency: int) -> float:
    return asyncio.run(_load(port, path, total, concurrency))


def accept(server: RedisServer, total: int, rounds: int) -> None:
    env = {**os.environ, "REDIS_URL": server.url, "BACKBURNER_DEV": "1", "BACKBURNER_SITE": str(ROOT),
           "BACKBURNER_NAMESPACE": "bench-accept", "BENCH_NAMESPACE": "bench-baseline"}  # fmt: skip
    ours_port, base_port = free_port(), free_port()
    procs = [
        subprocess.Popen([sys.executable, "-m", "backburner", "api", "--port", str(ours_port)], env=env,
                         stderr=subprocess.DEVNULL),
        subprocess.Popen([sys.executable, str(ROOT / "bench" / "_baseline.py"), "app", str(base_port)], env=env),
    ]  # fmt: skip
    try:
        wait_port(ours_port)
        wait_port(base_port)
        load(ours_port, "/.netlify/functions/noop-background", 500, 16)  # warm-up
        load(base_port, "/send", 500, 16)
        ours, base = [], []
        for _ in range(rounds):
            ours.append(load(ours_port, "/.netlify/functions/noop-background", total, 16))
            base.append(load(base_port, "/send", total, 16))
        o, b = statistics.median(ours), statistics.median(base)
        print(f"accept: backburner {o:8.0f} req/s   baseline FastAPI+send() {b:8.0f} req/s   ratio {o / b:.2f}"
              f"   (target >= 0.80; {rounds} rounds of {total}, 16 connections, medians)")  # fmt: skip
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()


def _cpu(pids: list[int]) -> dict[str, float]:
    """CPU seconds so far of ``pids`` and all their descendants, grouped: Redis, attempt children, the rest."""
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
            group = "redis" if "redis-server" in command else "children" if "forkserver" in command else "worker"
            groups[group] += times.user + times.system
    return groups


def _drain(client: redis.Redis, key: str, count: Any) -> None:
    while count(key):
        time.sleep(0.005)


def _ours(server: RedisServer, total: int, threads: int, processes: int) -> tuple[float, dict[str, float], int]:
    """Backburner: worker process(es) with ``threads`` threads each, every attempt in a warm child process."""
    from jobs.keys import Keys
    from jobs.lifecycle import new_run
    from jobs.settings import Settings
    from jobs.wiring import open_runtime

    client = redis.Redis.from_url(server.url)
    assert server.process is not None
    env = {**os.environ, "REDIS_URL": server.url, "BACKBURNER_SITE": str(ROOT), "BACKBURNER_DEV": "1",
           "BACKBURNER_NAMESPACE": "bench-runs"}  # fmt: skip
    stale = client.keys("bench-runs*")  # a previous round's runs and workers
    if stale:
        client.delete(*stale)
    settings = Settings(redis_url=server.url, site=ROOT, namespace="bench-runs", dev=True)
    runtime = open_runtime(settings)
    keys = Keys("bench-runs")
    worker = subprocess.Popen(
        [sys.executable, "-m", "backburner", "worker", "--processes", str(processes), "--threads", str(threads)],
        env=env,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        while client.zcard(keys.workers) < processes:
            time.sleep(0.05)
        time.sleep(1.0)  # let the pool finish pre-forking
        function = runtime.site.get("noop-background")
        batch: list[tuple[Any, dict[str, Any]]] = [(new_run(function, "api"), {}) for _ in range(total)]
        before = _cpu([worker.pid, server.process.pid])
        started = time.perf_counter()
        runtime.store.create_many(batch)
        _drain(client, keys.active, client.zcard)
        rate = total / (time.perf_counter() - started)
        after = _cpu([worker.pid, server.process.pid])
        failed = sum(1 for run in runtime.store.runs(limit=50)[0] if run.status != "succeeded")
    finally:
        worker.terminate()
        worker.wait()
        runtime.close()
    return rate, {name: (after[name] - before[name]) * 1000 / total for name in after}, failed


def _raw(server: RedisServer, total: int, threads: int, processes: int) -> tuple[float, dict[str, float]]:
    """The baseline: raw Dramatiq, same process and thread count, a no-op actor, the same Redis."""
    import dramatiq

    client = redis.Redis.from_url(server.url)
    assert server.process is not None
    env = {**os.environ, "REDIS_URL": server.url, "BENCH_NAMESPACE": "bench-raw"}
    baselines = [
        subprocess.Popen([sys.executable, str(ROOT / "bench" / "_baseline.py"), "worker", str(threads)], env=env)
        for _ in range(processes)
    ]  # fmt: skip
    try:
        time.sleep(2.0)  # no heartbeat set of our own to wait on; give it the same head start
        pipe = client.pipeline(transaction=True)
        for n in range(total):
            message_id = f"m{n}"
            message: dramatiq.Message[object] = dramatiq.Message(
                queue_name="noop", actor_name="noop", args=(), kwargs={}, options={"redis_message_id": message_id}
            )
            pipe.hset("bench-raw:noop.msgs", message_id, message.encode())
            pipe.rpush("bench-raw:noop", message_id)
        pids = [b.pid for b in baselines] + [server.process.pid]
        before = _cpu(pids)
        started = time.perf_counter()
        pipe.execute()
        _drain(client, "bench-raw:noop.msgs", client.hlen)
        rate = total / (time.perf_counter() - started)
        after = _cpu(pids)
    finally:
        for baseline in baselines:
            baseline.terminate()
            baseline.wait()
    return rate, {name: (after[name] - before[name]) * 1000 / total for name in after}


def runs(server: RedisServer, total: int, threads: int, processes: int, rounds: int) -> None:
    """Side-by-side rounds, alternating the two sides so a noisy machine hits both alike; the median ratio
    counts. Each round also prints the CPU each side spent per run (where the gap comes from)."""
    ratios = []
    for n in range(1, rounds + 1):
        ours, ours_cpu, failed = _ours(server, total, threads, processes)
        raw, raw_cpu = _raw(server, total, threads, processes)
        ratios.append(ours / raw)
        print(f"  round {n}: backburner {ours:6.0f} runs/s, raw Dramatiq {raw:6.0f} msgs/s, ratio {ours / raw:.2f};"
              f" CPU ms per run: backburner worker {ours_cpu['worker']:.2f} + children {ours_cpu['children']:.2f}"
              f" + Redis {ours_cpu['redis']:.2f}, raw worker {raw_cpu['worker']:.2f} + Redis {raw_cpu['redis']:.2f}"
              f"{f'; {failed} of the last 50 not succeeded' if failed else ''}")  # fmt: skip
    print(f"runs:   ratio {statistics.median(ratios):.2f} (median of {rounds}; target >= 0.50)   {total} no-op runs"
          f" per round, {processes} process(es) x {threads} threads, isolation on")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=["accept", "runs", "all"])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per measurement (median counts)")
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument(
        "--sweep", action="store_true", help="runs: also measure 1x4, 2x4 and 1x16 (processes x threads)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data, RedisServer(Path(data)) as server:
        print(f"embedded Redis {server.url} (appendfsync always), {os.cpu_count()} cores")
        if args.which in ("accept", "all"):
            accept(server, args.requests, args.rounds)
        if args.which in ("runs", "all"):
            runs(server, args.runs, args.threads, args.processes, args.rounds)
            if args.sweep:
                for processes, threads in ((1, 4), (2, 4), (1, 16)):
                    runs(server, args.runs, threads, processes, args.rounds)


if __name__ == "__main__":
    main()
