"""What the CLI tells a person, against a real API (and worker): states named as everywhere else, and why a
run did not succeed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from backburner.client import ApiError, Client
from tests.support.procs import wait_for
from tests.support.servers import ApiProc
from tests.support.sites import TOML, make_site


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return make_site(
        tmp_path / "site", toml=TOML + '\n[backburner.functions."fail-background"]\n  retries = ["0.1s"]\n'
    )


@pytest.fixture
def api(site: Path, env: dict[str, str]) -> Iterator[ApiProc]:
    proc = ApiProc(site, env).start()
    yield proc
    proc.stop()


def cli(api: ApiProc, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BACKBURNER_URL": api.url, "COLUMNS": "200"}
    command = [sys.executable, "-m", "backburner", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def test_schedules_pause_and_resume_name_the_states_as_the_listing_does(api: ApiProc) -> None:
    with Client(api.url) as client:
        client.create_schedule("nightly", "echo-background", "0 3 * * *")
    paused = cli(api, "schedules", "pause", "nightly")
    assert paused.returncode == 0 and paused.stderr.strip() == "nightly: paused", paused.stderr
    resumed = cli(api, "schedules", "resume", "nightly")
    assert resumed.returncode == 0 and resumed.stderr.strip() == "nightly: active", resumed.stderr


def test_a_wait_that_ends_badly_says_why_on_stderr_and_keeps_the_json_on_stdout(api: ApiProc, worker: object) -> None:
    failed = cli(api, "invoke", "fail-background", "--wait")
    assert failed.returncode == 1
    run = json.loads(failed.stdout)
    assert run["status"] == "failed" and run["error"]["traceback"]
    assert (
        f"failed: ValueError: boom on attempt 2 (attempt 2 of 2; the traceback is in the JSON on stdout and at "
        f"GET /api/runs/{run['id']})"
    ) in failed.stderr.splitlines(), failed.stderr
    again = cli(api, "replay", run["id"], "--wait")
    assert again.returncode == 1 and "failed: ValueError: boom on attempt 2 (attempt 2 of 2;" in again.stderr
    timed_out = cli(api, "invoke", "sleepy-background", "--wait")
    assert timed_out.returncode == 1
    assert (
        "failed: TimeLimitExceeded: sleepy-background exceeded its time limit of 1s and was killed (attempt 1 of 1)"
    ) in timed_out.stderr.splitlines(), timed_out.stderr


def test_a_wait_on_a_cancelled_run_says_it_was_cancelled(api: ApiProc, worker: object, tmp_path: Path) -> None:
    until = tmp_path / "never"
    env = {**os.environ, "BACKBURNER_URL": api.url}
    command = [
        sys.executable,
        "-m",
        "backburner",
        "invoke",
        "wait-background",
        "--data",
        json.dumps({"until": str(until)}),
    ]
    with subprocess.Popen(
        [*command, "--wait"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as waiting:
        started = Path(f"{until}.started")
        wait_for(started.exists, message="the run to start")
        with Client(api.url) as client:
            run_id = next(iter(client.runs("wait-background"))).id
            client.cancel(run_id)
        stdout, stderr = waiting.communicate(timeout=60)
    assert waiting.returncode == 1 and json.loads(stdout)["status"] == "cancelled"
    assert "cancelled (attempt 1 of 3)" in stderr.splitlines(), stderr


def test_a_malformed_webhook_secret_names_its_variable_and_not_its_value(tmp_path: Path) -> None:
    toml = TOML + '\n[backburner.functions."echo-background"]\n  on_success = ["https://hooks.example.com/x"]\n'
    hooks = make_site(tmp_path / "hooks", toml=toml)
    clean = {
        key: value for key, value in os.environ.items() if not key.startswith("BACKBURNER_") and key != "REDIS_URL"
    }
    env = {**clean, "COLUMNS": "400", "BACKBURNER_WEBHOOK_SECRET": "whsec_!!!notbase64"}
    command = [sys.executable, "-m", "backburner", "worker", "--site", str(hooks)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 1 and len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("error: BACKBURNER_WEBHOOK_SECRET: ") and "whsec_' followed by base64" in done.stderr
    assert "notbase64" not in done.stderr


BAD_NAMES = {
    "../../etc/passwd": "it contains a '..' segment",
    "a/./b.txt": "it contains a '.' segment",
    "..": "it contains a '..' segment",
    "a//b.txt": "it contains an empty segment",
    "/etc/passwd": "it is an absolute path",
}


@pytest.mark.parametrize(("name", "rule"), BAD_NAMES.items())
def test_a_bad_artifact_name_reaches_the_api_unchanged_and_gets_its_400(
    api: ApiProc, tmp_path: Path, name: str, rule: str
) -> None:
    run_id = "01JD3Z5W6X7Y8Z9A0B1C2D3E4F"
    expected = f"Artifact name {name!r} is not allowed: {rule}"
    with Client(api.url) as client:
        for fetch in (client.download, client.latest_artifact):
            with pytest.raises(ApiError) as refused:
                fetch(run_id if fetch == client.download else "echo-background", name, tmp_path / "out")
            assert (refused.value.status, refused.value.code) == (400, "invalid_input"), refused.value
            assert refused.value.message.startswith(expected), refused.value.message
    for target in (run_id, "latest:echo-background"):
        done = cli(api, "download", target, name, "-o", str(tmp_path / "out"))
        assert done.returncode == 1 and f"Error: 400: {expected}" in done.stderr, done.stderr
        assert "bytes" not in done.stdout + done.stderr, done.stdout  # no empty progress bar above the error
    assert [path.name for path in tmp_path.iterdir()] == ["site"]  # nothing saved, not even a part file


def test_a_dot_dot_run_id_stays_a_run_id(api: ApiProc) -> None:
    done = cli(api, "logs", "..")
    assert done.returncode == 1 and "Error: 404: No run with id '..'" in done.stderr, done.stderr


def test_invoke_goes_through_the_netlify_url_and_a_delayed_one_through_the_management_api(api: ApiProc) -> None:
    now = cli(api, "invoke", "echo-background")
    later = cli(api, "invoke", "echo-background", "--delay", "1h")
    assert now.returncode == later.returncode == 0, (now.stderr, later.stderr)
    with Client(api.url) as client:
        assert client.get(now.stdout.strip()).trigger == "http"
        assert client.get(later.stdout.strip()).trigger == "api"
