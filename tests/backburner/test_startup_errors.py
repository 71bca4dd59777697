"""Configuration errors on start-up: one line (what, where, the fix) and exit code 1, never a traceback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.sites import FUNCTIONS, TOML, make_site

SERVICES = ("dev", "api", "worker", "scheduler")
#: The repository's example site, whose schedules have fire times to compute.
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    toml = TOML + '\n[backburner.functions."echo-background"]\n  on_success = ["https://hooks.example.com/x"]\n'
    return make_site(tmp_path / "site", FUNCTIONS, toml)


def start(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a service that should refuse to start; it must exit by itself."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BACKBURNER_") and k != "REDIS_URL"}
    return subprocess.run(
        [sys.executable, "-m", "backburner", *args],
        env={**clean, "COLUMNS": "400", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def one_line(done: subprocess.CompletedProcess[str], *expected: str) -> str:
    """The one line a refused start printed, checked for the expected words."""
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def test_a_worker_without_the_webhook_secret_outside_dev_says_so_in_one_line(site, redis_server):
    env = {"REDIS_URL": redis_server.url}
    line = one_line(start("worker", "--site", str(site), env=env), "error: BACKBURNER_WEBHOOK_SECRET is not set")
    assert "echo-background" in line and "export BACKBURNER_WEBHOOK_SECRET=whsec_" in line
    # Several processes: checked once, before any starts (a supervisor would restart them in vain).
    one_line(start("worker", "--processes", "3", "--site", str(site), env=env), "BACKBURNER_WEBHOOK_SECRET")


@pytest.mark.parametrize("service", SERVICES)
def test_a_bad_redis_url_is_one_line_for_every_service(site, service):
    env = {"REDIS_URL": "redis://:hunter22@localhost:notaport/0", "BACKBURNER_API_TOKEN": "t" * 20}
    line = one_line(start(service, "--site", str(site), env=env), "REDIS_URL", "is not a Redis URL", "redis://host")
    assert "hunter22" not in line  # the password is never echoed


@pytest.mark.parametrize("service", SERVICES)
def test_a_netlify_toml_that_does_not_load_is_one_line_for_every_service(tmp_path, service, redis_server):
    broken = make_site(tmp_path / "broken", {"hello": FUNCTIONS["hello"]}, "[functions\n")
    env = {"REDIS_URL": redis_server.url, "BACKBURNER_API_TOKEN": "t" * 20}
    one_line(start(service, "--site", str(broken), env=env), "error: netlify.toml:1:", "TOML")


@pytest.mark.parametrize("service", SERVICES)
def test_a_setting_of_the_wrong_type_names_the_variable(site, service):
    env = {"BACKBURNER_WORKER_TIMEOUT": "soon", "BACKBURNER_WEBHOOK_SECRET": "not-whsec"}
    line = one_line(start(service, "--site", str(site), env=env), "BACKBURNER_WORKER_TIMEOUT='soon'")
    assert "BACKBURNER_WEBHOOK_SECRET: must start with 'whsec_'" in line and "not-whsec" not in line


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("BACKBURNER_WEBHOOK_TIMEOUT", "0", "greater than 0"),
        ("BACKBURNER_WEBHOOK_TIMEOUT", "-5", "greater than 0"),
        ("BACKBURNER_WEBHOOK_RETRIES", "5s,0", "'0' is not a delay: each must be more than 0"),
        ("BACKBURNER_WEBHOOK_SECRET", "whsec_AAAA", "secret holds 3 bytes"),
    ],
)
def test_webhook_settings_that_cannot_work_stop_the_worker_in_one_line(site, redis_server, variable, value, said):
    secret = {"BACKBURNER_WEBHOOK_SECRET": "whsec_" + "A" * 43 + "="}
    env = {"REDIS_URL": redis_server.url, **secret, variable: value}
    line = one_line(start("worker", "--site", str(site), env=env), variable, said)
    assert value not in line or variable != "BACKBURNER_WEBHOOK_SECRET"  # a secret is never echoed


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize(
    ("location", "said"),
    [("ftp://files/x", "only s3://bucket/prefix"), ("s3://Bad_Bucket/x", "'Bad_Bucket' is not a valid S3 bucket name")],
)
def test_an_artifact_store_that_cannot_work_stops_every_service(site, service, location, said, redis_server):
    """As netlify.toml's ``artifacts`` does in `check`: else every run that writes a file would fail."""
    env = {"REDIS_URL": redis_server.url, "BACKBURNER_API_TOKEN": "t" * 20, "BACKBURNER_ARTIFACTS": location}
    one_line(start(service, "--site", str(site), env=env), "error: BACKBURNER_ARTIFACTS: ", said)


@pytest.mark.parametrize("service", ["api", "worker", "scheduler"])
def test_services_other_than_dev_need_redis_url(site, service):
    env = {"BACKBURNER_API_TOKEN": "t" * 20, "BACKBURNER_WEBHOOK_SECRET": "whsec_" + "A" * 43 + "="}
    one_line(start(service, "--site", str(site), env=env), "REDIS_URL is not set", "backburner dev")


def test_the_api_without_a_token_outside_dev(site, redis_server):
    one_line(start("api", "--site", str(site), env={"REDIS_URL": redis_server.url}), "BACKBURNER_API_TOKEN")


def test_in_json_mode_the_error_is_a_json_line(site, redis_server):
    env = {"REDIS_URL": redis_server.url, "BACKBURNER_LOG_FORMAT": "json"}
    entry = json.loads(one_line(start("worker", "--site", str(site), env=env)))
    assert entry["level"] == "ERROR" and entry["service"] == "worker"
    assert entry["message"].startswith("BACKBURNER_WEBHOOK_SECRET is not set")


def test_dev_refuses_a_port_in_use_before_starting_anything(site, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        data = tmp_path / "data"
        done = start("dev", "--site", str(site), "--port", str(port), "--data-dir", str(data), env={})
    one_line(done, f"cannot listen on 127.0.0.1:{port}", "--port")
    assert not (data / "redis").exists()  # nothing was started


@pytest.mark.parametrize(
    "args",
    [
        ("dev", "--port", "99999"),
        ("dev", "--port", "-5"),
        ("api", "--port", "70000"),
        ("dev", "--threads", "0"),
        ("worker", "--processes", "0"),
        ("worker", "--threads", "-1"),
    ],
)
def test_numbers_out_of_range_are_usage_errors_naming_the_option(site, tmp_path, args):
    done = start(*args, "--site", str(site), env={"BACKBURNER_DATA_DIR": str(tmp_path / "data")})
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert f"Invalid value for '{args[1]}'" in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("args", "env", "said"),
    [
        (("runs", "--since", "999999d"), {}, "'999999d' ago is before the year 1"),
        (("replay", "--failed", "--until", "99999999999d"), {}, "ago is before the year 1"),
        (("schedules", "--count", "-1"), {}, "-1 is not in the range 0<=x<=100000"),
        (("schedules", "--from", "garbage"), {}, "'garbage' is not an ISO 8601 time"),
        (("schedules", "--site", str(REPO), "--from", "9999-12-31T23:59:59Z"), {}, "leaves no room for fire times"),
        (("runs", "--url", "http://[::1"), {}, "'http://[::1' is not a URL"),
        (("runs", "--url", "ftp://example.com"), {}, "is not an http(s) URL"),
        (("runs",), {"BACKBURNER_API_TOKEN": "tok\u00e9n-xxxxxxxxxxxxxxxx"}, "the API token must be printable ASCII"),
    ],
)
def test_client_commands_refuse_what_cannot_work_in_one_line(site, args, env, said):
    done = start(*args, env={"BACKBURNER_SITE": str(site), "BACKBURNER_URL": "http://127.0.0.1:9", **env})
    assert done.returncode in (1, 2) and "Traceback" not in done.stderr, done.stderr
    assert said in done.stderr, done.stderr
    assert "tok\u00e9n" not in done.stderr  # a token is never shown


def test_the_api_refuses_a_port_in_use_in_one_line_for_either_listener(site, redis_server):
    env = {"REDIS_URL": redis_server.url, "BACKBURNER_API_TOKEN": "t" * 20}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        api = start("api", "--site", str(site), "--port", str(port), env=env)
        dashboard = start("api", "--site", str(site), "--port", "0", "--dashboard-port", str(port), env=env)
    one_line(api, f"cannot listen on 127.0.0.1:{port}", "--port")
    one_line(dashboard, f"cannot listen on 127.0.0.1:{port}", "--dashboard-port")


def test_dev_says_which_data_dir_it_cannot_use(site, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    done = start("dev", "--site", str(site), "--data-dir", str(blocker / "data"), env={})
    one_line(done, f"data folder {blocker / 'data'}", "--data-dir")


def test_listener_errors_are_one_line_too_and_json_in_json_mode(site, redis_server, tmp_path):
    env = {"REDIS_URL": redis_server.url, "BACKBURNER_API_TOKEN": "t" * 20}
    one_line(
        start("api", "--site", str(site), "--port", "9999", "--dashboard-port", "9999", env=env),
        "error: --dashboard-port must differ from --port (9999)",
    )
    data = tmp_path / "data"
    json_env = {"BACKBURNER_LOG_FORMAT": "json"}
    done = start("dev", "--site", str(site), "--port", "9998", "--dashboard-port", "9998", "--data-dir", str(data),
                 env=json_env)  # fmt: skip
    entry = json.loads(one_line(done))
    assert entry["service"] == "dev" and entry["message"] == "--dashboard-port must differ from --port (9998)"
    exposed = start("dev", "--site", str(site), "--host", "0.0.0.0", "--data-dir", str(data), env=json_env)
    assert "listens on loopback only" in json.loads(one_line(exposed))["message"]
