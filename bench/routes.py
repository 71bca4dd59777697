"""Route matching cost: the site's route table vs Starlette's router over the same routes.

A request that no Backburner endpoint answers is matched against the site's rules and functions' own
paths (``jobs.site.routes``). This builds a site with ``--rules`` rewrite rules shaped like real ones
(literal prefixes, placeholders, splats, a catch-all last) and ``--paths`` own paths, and times
``RouteTable.match`` for a hit on the first rule, a hit on the last, an own path, and a miss, beside a
Starlette ``Router`` holding the same patterns matched the way Starlette matches every request (each
route's ``matches`` in order), for sites of 20, 200 and 2,000 rules. Target: at every size, the
table's slowest case costs no more than Starlette's median case (what finding an endpoint costs an
app with that many routes), i.e. the table does not grow with the number of rules. Usage::

    python bench/routes.py [--sizes 20,200,2000] [--rounds 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from starlette.responses import Response  # noqa: E402
from starlette.routing import Match, Route  # noqa: E402

from jobs.site import load_site  # noqa: E402

HANDLER = "def handler(event, context):\n    return {'statusCode': 200}\n"


def write_site(root: Path, rules: int, paths: int) -> None:
    folder = root / "netlify" / "functions"
    folder.mkdir(parents=True)
    toml = []
    for n in range(rules - 1):
        shape = n % 3
        source = (f"/area{n}/*", f"/area{n}/:id/items", f"/area{n}/exact")[shape]
        toml.append(f'[[redirects]]\nfrom = "{source}"\nto = "/.netlify/functions/fn{n % 10}"\nstatus = 200\n')
    toml.append('[[redirects]]\nfrom = "/*"\nto = "/index.html"\nstatus = 200\n')
    for n in range(10):
        (folder / f"fn{n}.py").write_text(HANDLER)
    for n in range(paths):
        (folder / f"own{n}.py").write_text(f'config = {{"path": ["/own{n}/:id", "/own{n}/files/*"]}}\n' + HANDLER)
    (root / "netlify.toml").write_text("\n".join(toml))


def starlette_routes(rules: int, paths: int) -> list[Route]:
    async def endpoint(request: object) -> Response:
        return Response()

    sources = []
    for n in range(rules - 1):
        sources.append((f"/area{n}/{{rest:path}}", f"/area{n}/{{id}}/items", f"/area{n}/exact")[n % 3])
    for n in range(paths):
        sources += [f"/own{n}/{{id}}", f"/own{n}/files/{{rest:path}}"]
    sources.append("/{rest:path}")
    return [Route(source, endpoint) for source in sources]


def starlette_match(routes: list[Route], path: str) -> Route | None:
    scope = {"type": "http", "path": path, "method": "GET", "root_path": ""}
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
    return None


def per_call_ns(call: Callable[[], object], rounds: int, calls: int = 2000) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter_ns()
        for _ in range(calls):
            call()
        samples.append((time.perf_counter_ns() - started) / calls)
    return statistics.median(samples)


def measure(rules: int, paths: int, rounds: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        write_site(Path(folder), rules, paths)
        started = time.perf_counter()
        table = load_site(folder).routes
        load_ms = (time.perf_counter() - started) * 1000
    routes = starlette_routes(rules, paths)
    last = rules - 2
    cases = {
        "first rule": "/area0/a/b",
        "last rule": f"/area{last}/" + ("x/y" if last % 3 == 0 else "7/items" if last % 3 == 1 else "exact"),
        "own path": f"/own{paths - 1}/files/a/b",
        "catch-all": "/nothing/here",
    }
    rows = []
    for name, path in cases.items():
        found = table.match(path)
        assert (found.function is not None) == (name != "catch-all"), (name, found)
        ours = per_call_ns(lambda path=path: table.match(path), rounds)
        theirs = per_call_ns(lambda path=path: starlette_match(routes, path), rounds)
        rows.append({"case": name, "table_us": ours / 1000, "starlette_us": theirs / 1000})
    return {"rules": rules, "paths": paths, "load_ms": load_ms, "cases": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20,200,2000", help="numbers of rules to try (comma-separated)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    results = [measure(rules, max(2, rules // 4), options.rounds) for rules in map(int, options.sizes.split(","))]
    if options.json:
        print(json.dumps(results))
        return
    met = True
    for result in results:
        rows = result["cases"]
        assert isinstance(rows, list)
        print(
            f"\n{result['rules']} rules, {result['paths']} functions with 2 paths each (site loaded in "
            f"{result['load_ms']:.0f} ms)"
        )
        print(f"  {'case':<12} {'route table':>12} {'starlette':>12}")
        for row in rows:
            print(f"  {row['case']:<12} {row['table_us']:>10.2f}us {row['starlette_us']:>10.2f}us")
        worst = max(row["table_us"] for row in rows)
        typical = statistics.median(row["starlette_us"] for row in rows)
        met = met and worst <= typical
        print(f"  slowest table case {worst:.2f}us vs Starlette's median {typical:.2f}us")
    print(f"\ntarget (slowest table case <= Starlette's median case, at every size): {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
