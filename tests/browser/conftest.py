"""The dashboard in a real headless Chromium (Debian's package, driven by Playwright) against a real
`backburner api` and `backburner worker` (not dev mode: the login form is part of every test).

Chromium comes from the system (``apt-get install chromium``; Playwright's own browser download is never
used). `bin/test` installs it; without it, or without the playwright package, these tests fail (never skip)
with a message saying how to install it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.procs import WorkerProc, wait_for
from tests.support.servers import ApiProc
from tests.support.sites import make_site

CHROMIUM = os.environ.get("BACKBURNER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "browser-" + secrets.token_urlsafe(24)

FUNCTIONS = {
    "progress-background": """
        import json, time
        def handler(event, context):
            steps = json.loads(event["body"] or "{}").get("steps", 10)
            rows = []
            for i in range(steps):
                context.log.info(f"processing batch {i + 1} of {steps}")
                context.progress(i + 1, steps, f"batch {i + 1}/{steps}")
                rows.append(f"{i + 1},{(i + 1) * 10}")
                time.sleep(0.6)
            context.artifacts.write("report.csv", "batch,rows\\n" + "\\n".join(rows) + "\\n")
            return {"batches": steps}
    """,
    "sleepy-background": """
        import time
        def handler(event, context):
            for i in range(600):
                print(f"still working ({i})", flush=True)
                time.sleep(0.5)
    """,
    "fail-background": """
        def handler(event, context):
            raise ValueError(f"the upstream API answered 500 (attempt {context.attempt})")
    """,
    "tick-background": """
        def handler(event, context):
            return {"tick": event["body"]}
    """,
}
TOML = """
[functions]
  directory = "netlify/functions"

[functions."tick-background"]
  schedule = "@hourly"

[backburner.functions."*-background"]
  retries = []
"""


def _require(condition: bool, reason: str) -> None:
    if not condition:
        pytest.fail(f"browser tests cannot run: {reason} (bin/test installs Debian's chromium and the test extras)")


@contextmanager
def running_stack(
    root: Path, redis_url: str, functions: dict[str, str], toml: str, extra_env: dict[str, str] | None = None
) -> Iterator[dict[str, Any]]:
    """A site, a worker and the API (with a token, not dev) on a free port: ``{"url", "site", "env"}``."""
    site = make_site(root / "site", functions, toml)
    env = {
        "REDIS_URL": redis_url,
        "BACKBURNER_NAMESPACE": f"b{uuid.uuid4().hex[:10]}",
        "BACKBURNER_SITE": str(site),
        "BACKBURNER_API_TOKEN": TOKEN,
        "BACKBURNER_HEARTBEAT_INTERVAL": "0.3",
        **(extra_env or {}),
    }
    worker = WorkerProc(site, env, threads=3)
    worker.env.pop("BACKBURNER_DEV", None)
    worker.start()
    api = ApiProc(site, env)
    api.env.pop("BACKBURNER_DEV", None)
    try:
        api.start()
        headers = {"authorization": f"Bearer {TOKEN}"}
        wait_for(
            lambda: httpx.get(f"{api.url}/readyz", headers=headers).status_code == 200, timeout=30, message="a worker"
        )
        yield {"url": api.url, "site": site, "env": env}
    finally:
        api.stop()
        worker.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_server: Any) -> Iterator[dict[str, Any]]:
    with running_stack(tmp_path_factory.mktemp("browser"), redis_server.url, FUNCTIONS, TOML) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _require(Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _require(False, "playwright is not installed (pip install -e '.[test]')")
        raise
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Any, stack: dict[str, Any]) -> Iterator[Any]:
    """A fresh browser context (no cookies); fails the test on any console error or CSP violation."""
    context = browser.new_context(base_url=stack["url"], accept_downloads=True, viewport={"width": 1360, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    tab.on("pageerror", lambda error: problems.append(str(error)))
    tab.allowed_errors = []  # a test that provokes an error (a wrong login's 401) lists it here
    yield tab
    context.close()
    unexpected = [text for text in problems if not any(allowed in text for allowed in tab.allowed_errors)]
    assert not unexpected, f"browser console errors: {unexpected}"


def api(stack: dict[str, Any], method: str, path: str, **kwargs: Any) -> httpx.Response:
    """The JSON API with the bearer token, for setting up runs the browser then looks at."""
    return httpx.request(
        method, f"{stack['url']}{path}", headers={"authorization": f"Bearer {TOKEN}"}, timeout=30, **kwargs
    )
