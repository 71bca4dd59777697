"""Spine benchmarks, each side by side with baselines on the same embedded Redis (see bench/sides.py).

python bench/spine.py accept    # 202s per second: noop-background vs FastAPI + one Dramatiq send()
python bench/spine.py runs      # drain of a 3,000-run backlog: Backburner vs raw Dramatiq vs Celery prefork,
                                # shapes 1x8 and 2x8 (processes x threads), CPU per run of each
python bench/spine.py latency   # idle worker: trigger -> handler start, p50 / p99, the same three
python bench/spine.py all       # all three; add --before REV to measure Backburner as of REV beside them

runs and latency end with issue 17's table: the baselines, Backburner before (as of --before REV, else the
issue's own figures) and now, with ratios to the baselines measured in the same run.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backburner.redis_server import RedisServer, free_port  # noqa: E402
from bench.sides import SIDES, Before  # noqa: E402


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


def _export(rev: str) -> Path:
    """A copy of the repository as of ``rev`` (``git archive``), in a folder removed at exit."""
    import atexit
    import shutil

    folder = Path(tempfile.mkdtemp(prefix="bench-before-"))
    atexit.register(shutil.rmtree, folder, True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def _shape(text: str) -> tuple[int, int]:
    processes, _, threads = text.partition("x")
    return int(processes), int(threads)


def runs(
    server: RedisServer, total: int, shapes: list[str], rounds: int, sides: list[str]
) -> dict[str, dict[str, float]]:
    """Drain a backlog of ``total`` runs, each side in turn per round (so a noisy machine hits all alike);
    medians count. Each round also prints the CPU each side spent per run (where the gap comes from)."""
    found: dict[str, dict[str, float]] = {}
    for shape in shapes:
        processes, threads = _shape(shape)
        rates: dict[str, list[float]] = {name: [] for name in sides}
        cpu: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
        for n in range(1, rounds + 1):
            order = sides if n % 2 else sides[::-1]
            for name in order:
                with SIDES[name](server, processes, threads) as side:
                    rate, spent = side.drain(total)
                rates[name].append(rate)
                cpu[name].append(spent)
            print(f"  {shape} round {n}: " + ", ".join(
                f"{name} {rates[name][-1]:5.0f}/s (CPU ms/run: worker {cpu[name][-1]['worker']:.2f}"
                f" + children {cpu[name][-1]['children']:.2f} + Redis {cpu[name][-1]['redis']:.2f})"
                for name in sides))  # fmt: skip
        medians = {name: statistics.median(found) for name, found in rates.items()}
        line = f"runs {shape}: " + "   ".join(f"{name} {medians[name]:5.0f}/s" for name in sides)
        if "backburner" in medians:
            ours = medians["backburner"]
            line += "".join(f"   vs {name} {ours / medians[name]:.2f}x" for name in sides if name != "backburner")
        print(f"{line}   (medians of {rounds} rounds, {total} runs each; targets >= 0.6x dramatiq, >= 1.5x celery)")
        found[shape] = medians
    return found


def latency(
    server: RedisServer, samples: int, rounds: int, sides: list[str], shape: str
) -> dict[str, tuple[float, float]]:
    """Trigger -> handler start on an idle worker, p50 and p99 per round; the medians over rounds count."""
    processes, threads = _shape(shape)
    found: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    for n in range(1, rounds + 1):
        for name in sides if n % 2 else sides[::-1]:
            with SIDES[name](server, processes, threads) as side:
                times = sorted(side.latency(samples))
            p50, p99 = statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]
            found[name].append((p50, p99))
        print(f"  latency round {n}: " + ", ".join(
            f"{name} p50 {found[name][-1][0]:.1f} ms p99 {found[name][-1][1]:.1f} ms" for name in sides))  # fmt: skip
    print(
        f"latency {shape} (trigger -> handler start, idle worker, medians of {rounds} rounds of {samples}): "
        + "   ".join(
            f"{name} p50 {statistics.median(p for p, _ in found[name]):.1f} ms / p99 "
            f"{statistics.median(p for _, p in found[name]):.1f} ms"
            for name in sides
        )  # fmt: skip
        + "   (targets for backburner: p50 <= 5 ms, p99 <= 25 ms)"
    )
    return {
        name: (statistics.median(p for p, _ in found[name]), statistics.median(p for _, p in found[name]))
        for name in sides
    }


#: Issue 17's figures for Backburner before its work (same machine, an earlier session): the table's "before"
#: column when ``--before`` is not given.
ISSUE_BEFORE = {
    "drain 1x8": "1,400/s (0.69x dramatiq, 1.13x celery, in its run)",
    "drain 2x8": "1,386/s (0.37x dramatiq, 1.22x celery, in its run)",
    "latency": "46 / 100 ms",
}


def table(drains: dict[str, dict[str, float]], waits: dict[str, tuple[float, float]]) -> None:
    """Issue 17's table: the baselines, then Backburner before (``--before REV``, else the issue's figures) and
    now, with now's ratios to the baselines of the same run."""
    measured = set(waits).union(*drains.values())
    baselines = [name for name in ("dramatiq", "celery") if name in measured]
    columns = [*baselines, "before" if "before" in measured else "before (issue 17)", "backburner"]
    print("\n| | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns))

    def cell(name: str, value: float | str, medians: dict[str, float]) -> str:
        if isinstance(value, str):
            return value
        if name in baselines:
            return f"{value:,.0f}/s"
        found = [f"{value / medians[n]:.2f}x {n}" for n in baselines]
        return f"{value:,.0f}/s" + (f" ({', '.join(found)})" if found else "")

    for shape, medians in drains.items():
        values: dict[str, float | str] = {**medians, "before (issue 17)": ISSUE_BEFORE.get("drain " + shape, "")}
        cells = [cell(name, values[name], medians) if name in values else "" for name in columns]
        print(f"| drain, {shape} | " + " | ".join(cells) + " |")
    if waits:
        cells = [f"{waits[name][0]:.1f} / {waits[name][1]:.1f} ms" if name in waits else "" for name in columns]
        cells = [
            ISSUE_BEFORE["latency"] if name == "before (issue 17)" else c
            for name, c in zip(columns, cells, strict=True)
        ]
        print("| idle: trigger -> handler start, p50 / p99 | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=["accept", "runs", "latency", "all"])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per measurement (median counts)")
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--shapes", default="1x8,2x8", help="runs: processes x threads, comma-separated")
    parser.add_argument("--sides", default="backburner,dramatiq,celery", help="which sides, comma-separated")
    parser.add_argument("--samples", type=int, default=200, help="latency: triggers per round")
    parser.add_argument("--before", metavar="REV", help="also measure Backburner as of git revision REV ('before')")
    args = parser.parse_args()
    sides = args.sides.split(",")
    if args.before:
        Before.tree = _export(args.before)
        if "before" not in sides:
            sides.insert(1, "before")
    with tempfile.TemporaryDirectory() as data, RedisServer(Path(data)) as server:
        print(f"embedded Redis {server.url} (appendfsync always), {os.cpu_count()} cores")
        if args.which in ("accept", "all"):
            accept(server, args.requests, args.rounds)
        drains: dict[str, dict[str, float]] = {}
        waits: dict[str, tuple[float, float]] = {}
        if args.which in ("runs", "all"):
            drains = runs(server, args.runs, args.shapes.split(","), args.rounds, sides)
        if args.which in ("latency", "all"):
            waits = latency(server, args.samples, args.rounds, sides, "1x8")
        if drains or waits:
            table(drains, waits)


if __name__ == "__main__":
    main()
