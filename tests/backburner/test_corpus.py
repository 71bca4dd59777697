"""The netlify.toml corpus (tests/corpus), served end to end: `backburner check`, then a real
`backburner dev` per site, called over HTTP the way each site's front-end calls it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.procs import wait_for
from tests.support.servers import DevProc

CORPUS = Path(__file__).resolve().parents[1] / "corpus"

SYNC = """
    import json
    def handler(event, context):
        body = {"function": context.function_name, "path": event["path"], "method": event["httpMethod"],
                "query": event["multiValueQueryStringParameters"]}
        return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}
"""
BACKGROUND = """
    def handler(event, context):
        query = event["multiValueQueryStringParameters"]
        return {"function": context.function_name, "path": event["path"], "query": query}
"""
THUMBNAIL = 'config = {"path": "/thumbnails/:id"}\n' + textwrap.dedent(BACKGROUND)

#: The function files each site's netlify.toml expects (its functions folder is part of what is tested).
FUNCTIONS: dict[str, dict[str, str]] = {
    "spa-with-api": {"functions/contact.py": SYNC, "functions/subscribe-background.py": BACKGROUND},
    "capitalised-hugo": {
        "lambda/newsletter.py": SYNC,
        "lambda/shortlink.py": SYNC,
        "lambda/webhook-background.py": BACKGROUND,
        "netlify/functions/not-here.py": SYNC,
    },
    "monorepo-base": {
        "apps/web/netlify/functions/orders.py": SYNC,
        "apps/web/netlify/functions/search.py": SYNC,
        "netlify/functions/decoy.py": SYNC,
    },
    "scheduled-ops": {
        f"netlify/functions/{name}.py": BACKGROUND if name.endswith("-background") else SYNC
        for name in (
            "sync-users",
            "sync-orders",
            "sync-stock",
            "report-daily-background",
            "report-weekly-background",
            "report-monthly-background",
            "cleanup",
            "heartbeat",
            "digest",
            "invoices",
            "backup-background",
            "status",
            "admin",
        )
    },
    "express-style": {
        "netlify/functions/server.py": SYNC,
        "netlify/functions/api.py": SYNC,
        "netlify/functions/thumbnail-background.py": THUMBNAIL,
    },
}


def build(name: str, into: Path) -> Path:
    root = into / name
    shutil.copytree(CORPUS / name, root)
    for relative, source in FUNCTIONS[name].items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip())
    return root


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    merged = {**os.environ, "COLUMNS": "250", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "backburner", *args], env=merged, capture_output=True, text=True, timeout=60
    )


@contextmanager
def dev(site: Path, env: dict[str, str]) -> Iterator[httpx.Client]:
    proc = DevProc(site, {**env, "BACKBURNER_DATA_DIR": str(site.parent / f".data-{site.name}")}).start()
    try:
        with httpx.Client(base_url=proc.url, timeout=30) as http:
            yield http
    finally:
        proc.stop()


def result_of(http: httpx.Client, response: httpx.Response) -> dict[str, Any]:
    """A 202's run, once a worker finished it, checking the headers Netlify's callers get."""
    assert response.status_code == 202 and response.content == b"", response.text
    run_id = response.headers["x-nf-request-id"]
    assert response.headers["location"] == f"/api/runs/{run_id}"

    def done() -> dict[str, Any] | None:
        run: dict[str, Any] = http.get(f"/api/runs/{run_id}").json()
        return run if run["status"] in ("succeeded", "failed") else None

    run = wait_for(done, timeout=60, message=f"run {run_id}")
    assert run["status"] == "succeeded", run["error"]
    assert run["trigger"] == "http"
    return dict(run["result"])


def called(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.fixture
def env(redis_server, namespace: str) -> dict[str, str]:
    return {"REDIS_URL": redis_server.url, "BACKBURNER_NAMESPACE": namespace}


def test_every_site_in_the_corpus_is_checked_here(tmp_path: Path) -> None:
    assert sorted(path.name for path in CORPUS.iterdir() if path.is_dir()) == sorted(FUNCTIONS)
    for name in FUNCTIONS:
        done = cli("check", "--site", str(build(name, tmp_path)))
        assert done.returncode == 0, f"{name}: {done.stderr}"


def test_spa_with_its_api_behind_a_rewrite(tmp_path: Path, env: dict[str, str]) -> None:
    site = build("spa-with-api", tmp_path)
    check = cli("check", "--site", str(site)).stderr
    assert "ok 2 functions in" in check and f"{site}/functions" in check
    assert "served     netlify.toml:17  /api/* -> /.netlify/functions/:splat 200" in check
    assert "Backburner's own endpoints at /api/functions, /api/runs, /api/schedules, /api/docs answer before" in check
    assert "not served netlify.toml:23  /* -> /index.html 200: a rewrite to /index.html" in check

    with dev(site, env) as http:
        contact = called(http.post("/api/contact?ref=home", json={"email": "a@example.com"}))
        assert contact == {"function": "contact", "path": "/api/contact", "method": "POST", "query": {"ref": ["home"]}}
        subscribed = result_of(http, http.post("/api/subscribe-background", json={"list": "news"}))
        assert subscribed == {"function": "subscribe-background", "path": "/api/subscribe-background", "query": {}}
        page = http.get("/pricing")
        assert (
            page.status_code == 404
            and "rule 2 (netlify.toml:23: /* -> /index.html 200)" in page.json()["error"]["message"]
        )
        runs = http.get("/api/runs").json()["runs"]  # the management API, not a function called "runs"
        assert [run["function"] for run in runs] == ["subscribe-background"]
        assert "text/html" in http.get("/").headers["content-type"]


def test_capitalised_keys_a_leading_slash_and_a_redirects_file(tmp_path: Path, env: dict[str, str]) -> None:
    site = build("capitalised-hugo", tmp_path)
    check = cli("check", "--site", str(site)).stderr
    assert f"ok 3 functions in {site}/lambda" in check
    lines = [line.strip() for line in check.splitlines() if line.startswith("  ")]
    assert [line.split()[0:2] for line in lines] == [
        ["served", "public/_redirects:2"],
        ["not", "served"],
        ["served", "public/_redirects:4"],
        ["served", "netlify.toml:19"],
        ["served", "netlify.toml:25"],
        ["not", "served"],
        ["not", "served"],
    ]

    with dev(site, env) as http:
        assert called(http.post("/subscribe", data={"email": "a@example.com"}))["function"] == "newsletter"
        hook = result_of(http, http.post("/webhooks/stripe?livemode=true", json={"type": "invoice.paid"}))
        assert hook == {"function": "webhook-background", "path": "/webhooks/stripe", "query": {"livemode": ["true"]}}
        assert called(http.get("/api/v1/newsletter"))["path"] == "/api/v1/newsletter"
        assert called(http.get("/go/xyz/"))["function"] == "shortlink"
        moved = http.get("/blog/hello-world")
        assert moved.status_code == 404 and "a redirect (status 301)" in moved.json()["error"]["message"]
        assert http.get("/.netlify/functions/not-here").status_code == 404  # netlify/functions is not the folder


def test_a_monorepo_base_folder_with_its_own_netlify_toml(tmp_path: Path, env: dict[str, str]) -> None:
    site = build("monorepo-base", tmp_path)
    check = cli("check", "--site", str(site)).stderr
    assert f"ok 2 functions in {site}/apps/web/netlify/functions" in check
    assert "apps/web/netlify.toml:10" in check

    with dev(site, env) as http:
        assert called(http.get("/api/v1/orders/42")) == {
            "function": "orders",
            "path": "/api/v1/orders/42",
            "method": "GET",
            "query": {},
        }
        assert called(http.get("/search", params={"q": "boots"}))["query"] == {"q": ["boots"]}
        assert http.get("/search", params={"q": "boots", "page": "2"}).status_code == 404  # Netlify's exact query set
        assert http.get("/.netlify/functions/decoy").json()["error"]["code"] == "function_not_found"


#: Next three runs of every schedule from Monday 2026-03-02 10:07 UTC, worked out by hand.
EXPECTED_RUNS = {
    "backup-background": ["2026-03-08T03:00:00Z", "2026-03-15T03:00:00Z", "2026-03-22T03:00:00Z"],
    "cleanup": ["2026-03-03T00:00:00Z", "2026-03-04T00:00:00Z", "2026-03-05T00:00:00Z"],
    "digest": ["2026-03-03T08:30:00Z", "2026-03-04T08:30:00Z", "2026-03-05T08:30:00Z"],
    "heartbeat": ["2026-03-02T11:00:00Z", "2026-03-02T12:00:00Z", "2026-03-02T13:00:00Z"],
    "invoices": ["2026-04-01T00:00:00Z", "2026-05-01T00:00:00Z", "2026-06-01T00:00:00Z"],
    # Berlin is UTC+1 until 29 March, then UTC+2.
    "report-daily-background": ["2026-03-03T05:00:00Z", "2026-03-04T05:00:00Z", "2026-03-05T05:00:00Z"],
    "report-monthly-background": ["2026-03-31T22:00:00Z", "2026-04-30T22:00:00Z", "2026-05-31T22:00:00Z"],
    "report-weekly-background": ["2026-03-09T06:00:00Z", "2026-03-16T06:00:00Z", "2026-03-23T06:00:00Z"],
    **{
        f"sync-{name}": ["2026-03-02T10:15:00Z", "2026-03-02T10:30:00Z", "2026-03-02T10:45:00Z"]
        for name in ("orders", "stock", "users")
    },
}


def test_many_schedules_list_the_right_next_runs_and_rewrites_still_work(tmp_path: Path, env: dict[str, str]) -> None:
    site = build("scheduled-ops", tmp_path)
    listed = cli("schedules", "--site", str(site), "--from", "2026-03-02T10:07:00Z", "--count", "3", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert {item["name"]: item["next_runs"] for item in json.loads(listed.stdout)} == EXPECTED_RUNS
    check = cli("check", "--site", str(site)).stderr
    assert "its conditions on Role are evaluated by Netlify's edge only" in check

    with dev(site, env) as http:
        assert called(http.get("/status")) == {"function": "status", "path": "/status", "method": "GET", "query": {}}
        admin = http.get("/admin/users")
        assert admin.status_code == 404 and admin.json()["error"]["message"].startswith("Nothing is served at /admin")
        schedules = http.get("/api/schedules").json()
        assert sorted(item["name"] for item in schedules) == sorted(EXPECTED_RUNS)


def test_an_express_style_catch_all_beside_functions_own_paths(tmp_path: Path, env: dict[str, str]) -> None:
    site = build("express-style", tmp_path)
    check = cli("check", "--site", str(site)).stderr
    assert "path       api" in check and "/v2/*" in check
    assert "path       thumbnail-background" in check and "/thumbnails/:id" in check

    with dev(site, env) as http:
        assert called(http.get("/about/team")) == {
            "function": "server",
            "path": "/about/team",
            "method": "GET",
            "query": {},
        }
        assert called(http.delete("/v2/items/7"))["function"] == "api"
        thumb = result_of(http, http.post("/thumbnails/9", content=b"\x89PNG"))
        assert thumb == {"function": "thumbnail-background", "path": "/thumbnails/9", "query": {}}
        assert "text/html" in http.get("/").headers["content-type"]  # the dashboard, not the catch-all
        assert http.get("/healthz").json() == {"status": "ok"}
        assert [f["name"] for f in http.get("/api/functions").json()] == ["api", "server", "thumbnail-background"]


def test_check_flags_a_rule_onto_a_missing_function_and_warns_about_what_netlify_skips(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "netlify" / "functions").mkdir(parents=True)
    (site / "netlify" / "functions" / "hello.py").write_text(textwrap.dedent(SYNC).lstrip())
    (site / "netlify.toml").write_text(
        '[[redirects]]\nfrom = "/old"\nto = "/.netlify/functions/gone"\nstatus = 200\n\n'
        '[[redirects]]\nto = "/.netlify/functions/hello"\nstatus = 200\n'
    )
    (site / "_redirects").write_text("/a  /.netlify/functions/hello  200\n")

    done = cli("check", "--site", str(site))

    assert done.returncode == 0, done.stderr
    lines = [line.rstrip() for line in done.stderr.splitlines()]
    assert lines[2:] == [
        "  served     _redirects:1    /a -> /.netlify/functions/hello 200",
        "  served     netlify.toml:1  /old -> /.netlify/functions/gone 200  (no function 'gone' in this site: 404)",
        "  not served netlify.toml:6  (no from) -> /.netlify/functions/hello 200: it has no 'from'; "
        "Netlify skips this rule",
    ]
    (site / "netlify.toml").write_text('[redirects]\nfrom = "/a"\nto = "/.netlify/functions/hello"\nstatus = 200\n')
    warned = cli("check", "--site", str(site))
    assert warned.returncode == 0 and warned.stderr.splitlines()[-1] == (
        "warning netlify.toml:1: redirects must be an array of tables: write [[redirects]] above each rule"
    )
