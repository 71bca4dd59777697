"""Schemathesis against a real `backburner api` (with its token) on a real Redis: generated valid and invalid
requests for every operation of /openapi.json (coverage, fuzzing) and stateful sequences that follow the
API's links (trigger -> get, cancel, replay), with every check schemathesis has (``--checks all``): no 5xx,
every status, content type, header and response body as documented, schema-breaking requests refused and
schema-valid ones accepted (tests/api/schemathesis.toml lists the operations whose rules no JSON Schema can
state, where a 400 naming the rule is a valid answer too), created resources readable, auth never ignored.

Left out: the two Server-Sent Events streams (``run_events``; ``run_logs`` with ``follow``), which stay open
while a run is active (no worker runs here), and ``readyz``, whose 503 without a worker is its documented
answer. A manual run against `backburner dev` covers them: see the README's "HTTP API" section.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.servers import ApiProc

TOKEN = "schemathesis-test-token-0123456789"
CONFIG = Path(__file__).with_name("schemathesis.toml")


def test_generated_and_stateful_requests_meet_the_openapi_document(site: Path, env: dict[str, str], tmp_path: Path):
    secured = {key: value for key, value in env.items() if key != "BACKBURNER_DEV"}
    # ignored_auth sends wrong tokens on purpose: do not let the throttle turn them into 429s mid-run.
    secured |= {"BACKBURNER_API_TOKEN": TOKEN, "BACKBURNER_AUTH_FAILURE_LIMIT": "1000000"}
    api = ApiProc(site, secured, log=tmp_path / "api.log")
    api.env.pop("BACKBURNER_DEV", None)
    api.start()
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file", str(CONFIG),
        "run",
        f"{api.url}/openapi.json",
        "--header", f"Authorization: Bearer {TOKEN}",
        "--checks", "all",
        "--phases", "examples,coverage,fuzzing,stateful",
        "--mode", "all",  # valid and invalid (negative) data
        "--max-examples", "10",
        "--seed", "20261204",
        "--exclude-operation-id", "run_events",
        "--exclude-operation-id", "run_logs",
        "--exclude-operation-id", "readyz",
        "--request-timeout", "10",
        "--no-color",
        "--continue-on-failure",
    ]  # fmt: skip
    try:
        # Run from the test's folder: schemathesis keeps a cache (.schemathesis/) where it runs.
        done = subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    finally:
        api.stop()
    report = done.stdout[-20_000:] + done.stderr[-5_000:]
    assert done.returncode == 0, report
    assert "Stateful" in done.stdout and " passed" in done.stdout, report
    assert "Traceback" not in (tmp_path / "api.log").read_text()
