"""`invoke --wait` and `logs --follow` against a real API and worker, over SSE."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.procs import wait_for
from tests.support.servers import ApiProc
from tests.support.sites import FUNCTIONS, TOML, make_site

CHATTY = """
    import json, time
    def handler(event, context):
        options = json.loads(event["body"] or "{}")
        for i in range(options.get("n", 3)):
            print(f"line {i} [not markup]")
            context.progress(i + 1, options.get("n", 3), f"step {i + 1}")
            time.sleep(options.get("pause", 0.2))
        if options.get("fail"):
            raise RuntimeError("asked to fail")
        return {"done": True}
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    toml = TOML + '\n[backburner.functions."chatty-background"]\n  retries = []\n'
    return make_site(tmp_path / "site", {**FUNCTIONS, "chatty-background": CHATTY}, toml)


@pytest.fixture
def api(site: Path, env: dict[str, str]):
    proc = ApiProc(site, env).start()
    yield proc
    proc.stop()


def cli(api: ApiProc, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BACKBURNER_URL": api.url, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "backburner", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_invoke_wait_prints_lines_then_the_result_and_exits_by_outcome(api, worker):
    done = cli(api, "invoke", "chatty-background", "--data", '{"n": 3}', "--wait")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "succeeded"
    positions = [done.stderr.index(f"line {i} [not markup]") for i in range(3)]
    assert positions == sorted(positions)
    failed = cli(api, "invoke", "chatty-background", "--data", '{"n": 1, "fail": true}', "--wait")
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["error"]["message"] == "asked to fail"


def test_logs_follow_streams_until_the_run_ends(api, worker):
    response = httpx.post(f"{api.url}/.netlify/functions/chatty-background", json={"n": 5, "pause": 0.3})
    run_id = response.headers["x-nf-request-id"]
    wait_for(lambda: httpx.get(f"{api.url}/api/runs/{run_id}").json()["status"] == "running", message="start")
    started = time.monotonic()
    followed = cli(api, "logs", run_id, "--follow")
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout.splitlines() == [f"[1] line {i} [not markup]" for i in range(5)]
    assert "succeeded" in followed.stderr
    assert time.monotonic() - started > 0.5  # it waited for the lines written after it started
    plain = cli(api, "logs", run_id)
    assert plain.stdout == followed.stdout


def test_runs_filters_by_trigger_and_time(api):
    http = httpx.post(f"{api.url}/.netlify/functions/chatty-background", json={"n": 0}).headers["x-nf-request-id"]
    by_api = httpx.post(f"{api.url}/api/functions/chatty-background/runs", json={"n": 0}).json()["id"]

    def ids(*args):
        done = cli(api, "runs", "--json", *args)
        assert done.returncode == 0, done.stderr
        return [run["id"] for run in json.loads(done.stdout)]

    assert ids("--since", "1h") == [by_api, http]
    assert ids("--trigger", "api") == [by_api]
    assert ids("--until", "1h") == []
    assert ids("--since", "2000-01-01T00:00:00Z", "--trigger", "http") == [http]
    bad = cli(api, "runs", "--since", "last week")
    assert bad.returncode == 2 and "neither an ISO 8601 time" in bad.stderr


def test_replay_with_new_data_and_cancel_from_the_shell(api, worker):
    first = httpx.post(f"{api.url}/.netlify/functions/chatty-background", json={"n": 1}).headers["x-nf-request-id"]
    replayed = cli(api, "replay", first, "--data", '{"n": 2}', "--wait")
    assert replayed.returncode == 0, replayed.stderr
    run = json.loads(replayed.stdout)
    assert run["status"] == "succeeded" and run["replay_of"] == first and run["trigger"] == "replay"
    assert [line["line"] for line in httpx.get(f"{api.url}/api/runs/{run['id']}/logs").json()["lines"]] == [
        "line 0 [not markup]",
        "line 1 [not markup]",
    ]  # the new payload's n, not the original's

    slow = httpx.post(f"{api.url}/.netlify/functions/chatty-background", json={"n": 100, "pause": 0.2})
    run_id = slow.headers["x-nf-request-id"]
    wait_for(lambda: httpx.get(f"{api.url}/api/runs/{run_id}").json()["status"] == "running", message="start")
    cancelled = cli(api, "cancel", run_id)
    assert cancelled.returncode == 0 and cancelled.stdout.strip() == "cancel requested"
    final = wait_for(lambda: (r := httpx.get(f"{api.url}/api/runs/{run_id}").json())["status"] == "cancelled" and r)
    assert [a["outcome"] for a in final["attempts"]] == ["cancelled"]


def test_helpful_errors(api):
    unknown = cli(api, "logs", "NOPE")
    assert unknown.returncode == 1 and "NOPE" in unknown.stderr
    bad = cli(api, "runs", "--status", "finished")
    assert bad.returncode == 2 and "is not one of" in bad.stderr
    both = cli(api, "invoke", "chatty-background", "--delay", "10m", "--at", "2027-01-01T00:00:00Z")
    assert both.returncode == 2 and "give --delay or --at, not both" in both.stderr and "Traceback" not in both.stderr
    gone = subprocess.run(
        [sys.executable, "-m", "backburner", "runs", "--url", "http://127.0.0.1:9"], capture_output=True, text=True
    )
    assert gone.returncode == 1 and "Cannot reach the Backburner API" in gone.stderr


def test_every_command_takes_site_and_client_commands_still_ask_the_api(api, site):
    import click

    from backburner.cli import main

    def leaves(command: click.Command, path: tuple[str, ...] = ()):
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from leaves(sub, (*path, name))
        else:
            yield " ".join(path), command

    without = [name for name, command in leaves(main) if not any("--site" in p.opts for p in command.params)]
    assert without == []  # DESIGN.md section 7: every command takes --site DIR
    created = httpx.post(f"{api.url}/api/functions/chatty-background/runs", json={"n": 0}).json()["id"]
    listed = cli(api, "runs", "--json", "--site", str(site))
    assert listed.returncode == 0, listed.stderr
    assert created in [run["id"] for run in json.loads(listed.stdout)]
