"""What capturing a run's output adds to an attempt: 100k printed lines, and one 2 MB write.

python bench/output.py [--rounds N]

Each case runs as a real attempt (warm child, embedded Redis with appendfsync always, as in production)
twice: printing to the run log, and the same code printing to /dev/null instead. The difference is what
capture costs; the target is under 1 s for each case. Cases run with the default rate cap (1,000 lines/s
after a burst of 5,000: most of a 100k flood is dropped and counted) and with the cap off (every line is
split, encoded and sent; Redis keeps the newest 5,000). The children's own stdout goes to /dev/null.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from backburner.redis_server import RedisServer  # noqa: E402
from jobs.execution.isolation import ChildPool  # noqa: E402
from jobs.execution.task import Task, attempt_context  # noqa: E402
from jobs.keys import Keys  # noqa: E402

HANDLER = """
import os, sys

def handler(event, context):
    out = open(os.devnull, "w") if event["sink"] == "null" else sys.stdout
    if event["case"] == "lines":
        for i in range(100_000):
            print(f"line {i} of the flood", file=out)
    elif event["case"] == "block":
        out.write(("x" * 79 + "\\n") * (2 * 1024 * 1024 // 80))
    else:
        out.write("y" * (2 * 1024 * 1024) + "\\n")
    out.flush()
    return None
"""
CASES = {"lines": "100k printed lines", "block": "one 2 MB write of 80-char lines", "oneline": "one 2 MB line"}


def attempt(pool: ChildPool, path: Path, url: str, case: str, sink: str, rate: float | None, n: int) -> float:
    run_id = f"bench-{case}-{sink}-{rate}-{n}"
    context = attempt_context("flood", run_id, 60, namespace="bench", redis_url=url, log_rate=rate, log_burst=5000)
    started = time.perf_counter()
    result = pool.run(Task("flood", str(path), {"case": case, "sink": sink}, context), 60)
    elapsed = time.perf_counter() - started
    if not result.ok:
        raise RuntimeError(result.error)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    report = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # the children's passthrough goes nowhere
    with tempfile.TemporaryDirectory() as folder, RedisServer(Path(folder) / "redis") as server:
        path = Path(folder) / "flood.py"
        path.write_text(textwrap.dedent(HANDLER))
        pool = ChildPool(1).start()
        client = redis.Redis.from_url(server.url)
        keys = Keys("bench")
        try:
            attempt(pool, path, server.url, "lines", "null", None, -1)  # warm: import the function once
            report.write(f"{'case':34} {'rate cap':>9} {'captured':>9} {'to null':>8} {'added':>7}  stored/dropped\n")
            for case, title in CASES.items():
                for rate in (1000.0, None):
                    added, captured, plain = [], [], []
                    for n in range(args.rounds):
                        base = attempt(pool, path, server.url, case, "null", rate, n)
                        took = attempt(pool, path, server.url, case, "log", rate, n)
                        plain.append(base)
                        captured.append(took)
                        added.append(took - base)
                    run_id = f"bench-{case}-log-{rate}-{args.rounds - 1}"
                    stored = client.llen(keys.logs(run_id))
                    dropped = int(client.get(keys.log_dropped(run_id)) or 0)
                    cap = "1000/s" if rate else "off"
                    report.write(
                        f"{title:34} {cap:>9} {statistics.median(captured):8.3f}s {statistics.median(plain):7.3f}s "
                        f"{statistics.median(added):6.3f}s  {stored}/{dropped}\n"
                    )
        finally:
            pool.close()
    report.write("target: 'added' under 1 s in every case\n")


if __name__ == "__main__":
    main()
