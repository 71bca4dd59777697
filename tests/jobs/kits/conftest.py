"""The kits' end-to-end site: a copy of the repository's example site (so its functions are tested as shipped)
plus a few test-only functions, and a real API server on loopback for functions that call the API over HTTP."""

from __future__ import annotations

import shutil
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobs.settings import Settings
from tests.support.procs import wait_for
from tests.support.s3 import free_port

REPO = Path(__file__).resolve().parents[3]

FUNCTIONS = {
    # Dies (os._exit, as a segfault or OOM kill would) in the middle of chunk `crash_after` on attempt 1.
    "kit-crash-background": """
        import json, os
        from jobs.batch import Batch

        def handler(event, context):
            payload = json.loads(event["body"] or "{}")
            calls = 0

            def transform(df):
                nonlocal calls
                calls += 1
                if context.attempt == 1 and calls == payload["crash_after"] + 1:
                    os._exit(9)
                return df.assign(attempt=context.attempt)

            result = Batch(context, payload["source"], transform, chunk_rows=payload["chunk_rows"]).run(event)
            return result | {"calls": calls}
    """,
    # Splits its source over child runs of itself; each row is tagged with the run that processed it. With
    # "fail_marker", slice 1's child fails for good (both attempts) after staging a chunk, unless the marker exists.
    "kit-fanout-background": """
        import json, os
        from jobs.batch import Batch

        def handler(event, context):
            payload = json.loads(event["body"] or "{}")
            piece, marker, calls = payload.get("backburner_batch") or {}, payload.get("fail_marker"), 0

            def tag(df):
                nonlocal calls
                calls += 1
                if marker and piece.get("slice") == 1 and calls == 2 and not os.path.exists(marker):
                    if context.attempt == 2:
                        open(marker, "w").close()
                    raise RuntimeError("slice 1 fails after its first chunk")
                return df.assign(run=context.run_id)

            batch = Batch(context, payload["source"], tag, chunk_rows=400)
            return batch.fan_out(event, children=payload["children"], poll_s=0.05)
    """,
}

TOML = """
[backburner.functions."kit-crash-background"]
  retries = ["0.2s"]

[backburner.functions."kit-fanout-background"]
  retries = ["0.2s"]
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    shutil.copytree(REPO / "netlify", root / "netlify", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "netlify.toml").write_text((REPO / "netlify.toml").read_text() + TOML)
    for name, source in FUNCTIONS.items():
        (root / "netlify" / "functions" / f"{name}.py").write_text(textwrap.dedent(source).lstrip())
    return root


@pytest.fixture
def live_port() -> int:
    return free_port()


@pytest.fixture
def env(env: dict[str, str], live_port: int) -> dict[str, str]:
    """Workers (and their functions) find the API at BACKBURNER_URL, served by ``live_api``."""
    return {**env, "BACKBURNER_URL": f"http://127.0.0.1:{live_port}"}


@pytest.fixture
def live_api(settings: Settings, live_port: int) -> Iterator[str]:
    """The real API app served by uvicorn on loopback (a TestClient is not reachable from other processes)."""
    import uvicorn

    from api.app import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=live_port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="live-api", daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=30, message="the API server to start")
    yield f"http://127.0.0.1:{live_port}"
    server.should_exit = True
    thread.join(timeout=15)
