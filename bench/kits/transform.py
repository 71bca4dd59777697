"""Benchmark 2: a batch transform of a big CSV to Parquet with the batch kit vs a plain pandas chunked loop.

Both sides read the same CSV in 100k-row chunks, apply the same normalisation (trim and upper-case a code,
lower-case an email, parse a timestamp, coerce an amount) and write one Parquet file per chunk. The kit side
is the real thing: a Batch in a run context with its checkpoint and progress in Redis (an embedded
redis-server), its output staged and committed in a local artifact store. Each side runs in a fresh process;
peak RSS is that process's ru_maxrss (from wait4, so children are included), throughput is rows per second.
Targets: kit peak RSS <= 400 MB; kit throughput >= 0.8 x the plain loop.

    .venv/bin/python bench/kits/transform.py [--rows 10000000] [--chunk-rows 100000]

The 10M-row CSV is ~0.6 GB in a temporary folder (checked against free space first); use --rows to scale down.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
BYTES_PER_ROW = 64


def make_csv(rows: int, path: Path) -> None:
    """Deterministic rows written in blocks with pyarrow (fast, little memory)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(1)
    codes = np.array(["de", " fr", "NL ", "es", "It", "pl"])
    with pacsv.CSVWriter(path, pa.schema([("id", pa.int64()), ("code", pa.string()), ("email", pa.string()),
                                          ("at", pa.string()), ("amount", pa.string())])) as writer:  # fmt: skip
        for start in range(0, rows, 1_000_000):
            n = min(1_000_000, rows - start)
            ids = np.arange(start, start + n)
            seconds = (ids * 37) % (86400 * 365)
            at = (np.datetime64("2026-01-01T00:00:00") + seconds.astype("timedelta64[s]")).astype(str)
            table = pa.table({
                "id": ids,
                "code": codes[rng.integers(0, len(codes), n)],
                "email": np.char.add(np.char.add(" User", (ids % 5000).astype(str)), "@Example.COM"),
                "at": at,
                "amount": np.round(rng.uniform(1, 1000, n), 2).astype(str),
            })  # fmt: skip
            writer.write_table(table)


NORMALISE = """
import pandas as pd

def normalise(df):
    return pd.DataFrame({
        "id": df["id"],
        "code": df["code"].str.strip().str.upper(),
        "email": df["email"].str.strip().str.lower(),
        "at": pd.to_datetime(df["at"], format="%Y-%m-%dT%H:%M:%S", utc=True),
        "amount": pd.to_numeric(df["amount"], errors="coerce"),
    })
"""


def kit_worker(csv: str, out: str, chunk_rows: int, redis_url: str) -> dict:
    """The kit side, in its own process: a real run context (Redis checkpoints, local artifact store)."""
    namespace: dict = {}
    exec(NORMALISE, namespace)
    from jobs.artifacts.writer import ArtifactWriter
    from jobs.batch import Batch, ReadOptions
    from jobs.execution.context import Context
    from jobs.execution.task import attempt_context

    info = attempt_context("bench", "BENCH", 3600, namespace=f"bench{os.getpid()}", redis_url=redis_url)
    context = Context(info)
    context.artifacts = ArtifactWriter(out, "bench", "BENCH")
    types = {"id": "int64", "code": "string", "email": "string", "at": "string", "amount": "string"}
    batch = Batch(context, csv, namespace["normalise"], chunk_rows=chunk_rows, read=ReadOptions(column_types=types))
    return batch.run()


def plain_worker(csv: str, out: str, chunk_rows: int) -> dict:
    """The baseline: pandas' chunked CSV reader and to_parquet, one file per chunk."""
    namespace: dict = {}
    exec(NORMALISE, namespace)
    import pandas as pd

    Path(out).mkdir(parents=True, exist_ok=True)
    rows = 0
    dtypes = {"id": "int64", "code": "str", "email": "str", "at": "str", "amount": "str"}
    for n, chunk in enumerate(pd.read_csv(csv, chunksize=chunk_rows, dtype=dtypes)):
        namespace["normalise"](chunk).to_parquet(Path(out) / f"part-{n:05d}.parquet", index=False)
        rows += len(chunk)
    return {"rows_in": rows}


def measure(args: list[str]) -> tuple[float, float, dict]:
    """Run one side in a fresh process: wall seconds, peak RSS in MB (wait4: the process and its children), its
    JSON answer. Start-up (imports) is included on both sides."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{args[0]} failed with exit code {proc.returncode}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024, json.loads(output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-transform-"))
    try:
        need = args.rows * BYTES_PER_ROW * 2  # the CSV plus two Parquet outputs, generously
        free = shutil.disk_usage(folder).free
        if free < need:
            raise SystemExit(f"need ~{need / 1e9:.1f} GB free in {folder.parent}, have {free / 1e9:.1f} GB: "
                             "pass a smaller --rows")  # fmt: skip
        csv = folder / "in.csv"
        started = time.perf_counter()
        # In a child: Linux carries a parent's resident size into a forked child's ru_maxrss, so the measuring
        # parent must stay small.
        subprocess.run([sys.executable, __file__, "gen", str(csv), str(args.rows)], check=True)
        took = time.perf_counter() - started
        print(f"generated {args.rows:,} rows, {csv.stat().st_size / 1e6:.0f} MB in {took:.0f} s")
        from backburner.redis_server import RedisServer

        with RedisServer(folder / "redis", fsync="everysec") as redis:
            kit_s, kit_mb, kit = measure(["kit", str(csv), str(folder / "kit"), str(args.chunk_rows), redis.url])
        plain_s, plain_mb, plain = measure(["plain", str(csv), str(folder / "plain"), str(args.chunk_rows)])
        assert kit["rows_in"] == plain["rows_in"] == args.rows, (kit, plain)
        kit_rate, plain_rate = args.rows / kit_s, args.rows / plain_s
        print(f"transform {args.rows:,} CSV rows -> Parquet in {args.chunk_rows:,}-row chunks (fresh process each)")
        print(f"  batch kit      {kit_s:7.1f} s  {kit_rate:10,.0f} rows/s  peak RSS {kit_mb:6.0f} MB")
        print(f"  plain pandas   {plain_s:7.1f} s  {plain_rate:10,.0f} rows/s  peak RSS {plain_mb:6.0f} MB")
        print(f"  throughput kit/plain {kit_rate / plain_rate:.2f} (target >= 0.8: "
              f"{'OK' if kit_rate / plain_rate >= 0.8 else 'MISSED'}); "
              f"kit peak RSS {kit_mb:.0f} MB (target <= 400: {'OK' if kit_mb <= 400 else 'MISSED'})")  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "gen":
        make_csv(int(sys.argv[3]), Path(sys.argv[2]))
    elif len(sys.argv) > 1 and sys.argv[1] in ("kit", "plain"):
        side, csv, out, chunk_rows, *rest = sys.argv[1:]
        work = kit_worker if side == "kit" else plain_worker
        print(json.dumps(work(csv, out, int(chunk_rows), *rest)))  # type: ignore[operator]
    else:
        main()
