"""Benchmark 3: aggregate 100 JSON sources that each take 200 ms to answer.

The sources are served by a small asyncio HTTP server in its own process, listening on ten loopback
addresses (127.0.0.1-10, so ten "hosts"); each request waits 200 ms, then answers a JSON list. Side by side:
the aggregation kit (per-host limit 10, retries, ETag cache on), a bare ``asyncio.gather`` of httpx GETs (the
floor: no limits, no cache, no retries), and one sequential pass over 10 sources (x10, for scale).
Target: the kit collects all 100 in at most 1.5 s of wall time.

    .venv/bin/python bench/kits/aggregate.py [--sources 100] [--delay 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

HOSTS = [f"127.0.0.{n}" for n in range(1, 11)]


def serve(port: int, delay: float, ready: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    """HTTP/1.1 keep-alive, just enough for GETs: wait ``delay``, answer a small JSON list."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode()
                await asyncio.sleep(delay)
                body = json.dumps([{"path": path, "n": n} for n in range(10)]).encode()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\n\r\n%s" % (len(body), body))  # fmt: skip
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        servers = [await asyncio.start_server(handle, host, port, backlog=1024) for host in HOSTS]
        ready.set()
        await asyncio.gather(*(s.serve_forever() for s in servers))

    asyncio.run(main())


async def kit(urls: list[str]) -> float:
    from jobs.aggregate import Source, aggregate

    sources = [Source(f"s{n}", url, timeout=10) for n, url in enumerate(urls)]
    started = time.perf_counter()
    result = await aggregate(sources, per_host=10, on_error="fail")
    elapsed = time.perf_counter() - started
    assert sum(len(r.records) for r in result.results.values()) == 10 * len(urls)
    return elapsed


async def bare(urls: list[str]) -> float:
    import httpx

    started = time.perf_counter()
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=None)) as client:
        answers = await asyncio.gather(*(client.get(url) for url in urls))
    assert all(a.status_code == 200 for a in answers)
    return time.perf_counter() - started


async def sequential(urls: list[str]) -> float:
    import httpx

    started = time.perf_counter()
    async with httpx.AsyncClient() as client:
        for url in urls:
            (await client.get(url)).raise_for_status()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=100)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from backburner.redis_server import free_port

    port = free_port()
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=serve, args=(port, args.delay, ready), daemon=True)
    server.start()
    try:
        if not ready.wait(10):
            raise SystemExit("the source server did not start")
        urls = [f"http://{HOSTS[n % len(HOSTS)]}:{port}/items/{n}" for n in range(args.sources)]
        asyncio.run(kit(urls))  # warm-up (imports)
        kit_s = statistics.median(asyncio.run(kit(urls)) for _ in range(args.repeat))
        bare_s = statistics.median(asyncio.run(bare(urls)) for _ in range(args.repeat))
        seq_s = asyncio.run(sequential(urls[:10])) * args.sources / 10
        print(f"{args.sources} sources x {args.delay * 1000:.0f} ms each on {len(HOSTS)} loopback hosts "
              f"(median of {args.repeat})")  # fmt: skip
        print(f"  aggregation kit (per_host=10)   {kit_s:6.3f} s")
        print(f"  bare asyncio.gather + httpx     {bare_s:6.3f} s")
        print(f"  sequential (10 measured, x{args.sources // 10})   {seq_s:6.3f} s")
        print(f"  kit wall time {kit_s:.3f} s (target <= 1.5 s: {'OK' if kit_s <= 1.5 else 'MISSED'})")
    finally:
        server.terminate()
        server.join()


if __name__ == "__main__":
    main()
