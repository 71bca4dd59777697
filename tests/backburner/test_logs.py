"""Operator logs: JSON lines on request, and no secrets in either format."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys

import httpx
import pytest

from backburner.logs import JsonFormatter, RedactingFormatter, redact, secrets_from_environment
from tests.support.http import WebhookReceiver
from tests.support.procs import wait_for
from tests.support.servers import free_port

TOKEN = "s3cret-api-token-0123456789"


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("backburner.test", logging.WARNING, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def test_json_lines_carry_level_logger_service_and_extra_fields():
    line = JsonFormatter("worker").format(record("run %s failed", "R1", run_id="R1", attempt=2))
    entry = json.loads(line)
    assert entry["level"] == "WARNING" and entry["logger"] == "backburner.test" and entry["service"] == "worker"
    assert entry["message"] == "run R1 failed" and entry["run_id"] == "R1" and entry["attempt"] == 2
    assert entry["time"].endswith("Z") and isinstance(entry["pid"], int)


def test_exceptions_are_one_json_field():
    try:
        raise ValueError("boom")
    except ValueError:
        made = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    entry = json.loads(JsonFormatter().format(made))
    assert "ValueError: boom" in entry["exception"]


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        (f"token {TOKEN} seen", TOKEN),
        ("Authorization: Bearer abc.def.ghi", "abc.def.ghi"),
        ("secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ("redis at redis://:hunter22@cache:6379/0", "hunter22"),
        ("GET https://s3/bucket/key?X-Amz-Signature=deadbeef&X-Amz-Expires=60", "deadbeef"),
    ],
)
def test_secrets_are_redacted(text, leak):
    secrets = secrets_from_environment({"BACKBURNER_API_TOKEN": TOKEN, "REDIS_URL": "redis://:hunter22@cache:6379"})
    assert leak not in redact(text, secrets)
    assert leak not in JsonFormatter(secrets=secrets).format(record(text))
    assert leak not in RedactingFormatter("%(message)s", secrets).format(record(text))


def test_text_that_only_looks_like_a_bearer_token_stays_readable():
    hint = "auth must be {bearer = ...}, {basic = [user, password]} or {header = {Name = value}}"
    assert redact(hint, []) == hint
    assert "abc.def" not in redact("Authorization: bearer   abc.def", [])


def test_every_line_of_a_real_api_process_is_json_without_the_token(site, env):
    port = free_port()
    environment = {**os.environ, **env, "BACKBURNER_LOG_FORMAT": "json", "BACKBURNER_API_TOKEN": TOKEN}
    environment.pop("BACKBURNER_DEV")
    process = subprocess.Popen(
        [sys.executable, "-m", "backburner", "api", "--port", str(port)],
        env=environment,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=30, message="the API")
        httpx.get(f"{url}/api/runs", headers={"authorization": f"Bearer {TOKEN}"})
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "the API logged nothing"
    entries = [json.loads(line) for line in lines]  # every line parses
    assert any(entry["logger"].startswith("uvicorn") for entry in entries)
    assert {entry["service"] for entry in entries} == {"api"}
    assert TOKEN not in stderr


QUOTED_TOKEN = 'tok"en\\with-quotes-0123'


@pytest.mark.parametrize(
    "text",
    [
        f"token {QUOTED_TOKEN}",
        f"payload {json.dumps({'token': QUOTED_TOKEN})}",  # JSON-escaped
        f"nested {json.dumps(json.dumps({'token': QUOTED_TOKEN}))}",  # JSON in JSON
        f"repr {QUOTED_TOKEN!r}",
        f"url https://x/?t={__import__('urllib.parse').parse.quote(QUOTED_TOKEN, safe='')}",
    ],
)
def test_a_secret_is_redacted_in_every_encoding_in_both_formats(text):
    import urllib.parse

    secrets = secrets_from_environment({"BACKBURNER_API_TOKEN": QUOTED_TOKEN})
    escaped = json.dumps(QUOTED_TOKEN)[1:-1]
    leaks = [QUOTED_TOKEN, escaped, json.dumps(escaped)[1:-1], urllib.parse.quote(QUOTED_TOKEN, safe=""), "with-quotes"]
    for line in (
        JsonFormatter(secrets=secrets).format(record(text)),
        RedactingFormatter("%(message)s", secrets).format(record(text)),
    ):
        assert not [leak for leak in leaks if leak in line], line
        assert "[redacted]" in line
    assert json.loads(JsonFormatter(secrets=secrets).format(record(text)))["message"]  # still one JSON object


def test_backburner_secrets_by_name_are_found_in_the_environment():
    env = {"BACKBURNER_SESSION_KEY": "session-key-0123", "BACKBURNER_SITE": "/srv/site-path", "OTHER": "plain-value"}
    assert secrets_from_environment(env) == ["session-key-0123"]


def test_secrets_named_the_short_ways_are_found_but_not_the_working_directory():
    env = {
        "DB_PASS": "db-pass-value-1",
        "MYSQL_PWD": "mysql-pwd-value",
        "SENTRY_DSN": "https://k3y@sentry.example/1",
        "PWD": "/srv/working-directory",
        "COMPASS_URL": "https://compass.example",
    }
    assert sorted(secrets_from_environment(env)) == [
        "db-pass-value-1",
        "https://k3y@sentry.example/1",
        "mysql-pwd-value",
    ]


def test_requests_made_with_httpx_leave_no_url_in_the_logs():
    """httpx logs each request's URL at INFO; a webhook URL's query may hold a credential."""
    script = """
import logging, sys, httpx
from backburner.logs import configure
configure("INFO", service="worker")
httpx.post(sys.argv[1], json={})
logging.getLogger("backburner.test").info("still logging")
"""
    with WebhookReceiver() as receiver:
        done = subprocess.run(
            [sys.executable, "-c", script, f"{receiver.url}?token=Qu3ryT0kenSecret"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert len(receiver.wait_for(1)) == 1
    assert done.returncode == 0, done.stderr
    assert "still logging" in done.stderr and "Qu3ryT0kenSecret" not in done.stderr, done.stderr


def test_json_lines_carry_no_terminal_colours():
    """uvicorn adds ``color_message`` (the message with ANSI colours) to its records; libraries may colour
    the message itself."""
    coloured = record("Started server process [%d]", 42, color_message="Started server process [\x1b[36m%d\x1b[0m]")
    entry = json.loads(JsonFormatter("api").format(coloured))
    assert entry["message"] == "Started server process [42]" and "color_message" not in entry
    painted = json.loads(JsonFormatter().format(record("\x1b[1mbold\x1b[0m and \x1b[31mred\x1b[0m", note="\x1b[2Kx")))
    assert painted["message"] == "bold and red" and painted["note"] == "x"


def test_json_mode_turns_warnings_and_uncaught_exceptions_into_json_lines():
    script = """
import threading, warnings
from backburner.logs import configure
configure(service="worker")
warnings.warn("an old API", DeprecationWarning, stacklevel=1)
warnings.warn("careful")
thread = threading.Thread(target=lambda: 1 / 0, name="helper")
thread.start(); thread.join()
raise RuntimeError("nobody caught this")
"""
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", script],
        env={**os.environ, "BACKBURNER_LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    entries = [json.loads(line) for line in done.stderr.splitlines()]  # every line is JSON
    assert [e["logger"] for e in entries] == ["py.warnings", "py.warnings", "backburner", "backburner"]
    assert "DeprecationWarning: an old API" in entries[0]["message"]
    assert entries[2]["message"] == "uncaught exception in thread helper"
    assert "ZeroDivisionError" in entries[2]["exception"]
    assert entries[3]["level"] == "CRITICAL" and "RuntimeError: nobody caught this" in entries[3]["exception"]


def test_two_libraries_lines_about_a_redis_outage_are_tamed() -> None:
    """APScheduler's skip line comes several times a second while Redis hangs; Dramatiq's CRITICAL for a consumer
    that reconnects by itself would page on-call. Backburner's own lines say the outage once."""
    script = """
import logging
from backburner.logs import configure
configure("INFO", service="scheduler", fmt="text")
aps, consumer = logging.getLogger("apscheduler.scheduler"), logging.getLogger("dramatiq.worker.ConsumerThread(runs)")
aps.warning('Execution of job "%s" skipped: maximum number of running instances reached (%d)', "tick", 1)
aps.warning("Run time of job %s was missed by %s", "tick", "0:00:02")
consumer.critical("Consumer encountered a connection error: %s", "Timeout reading from socket")
consumer.critical("Consumer encountered an unexpected error.")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    lines = done.stderr.splitlines()
    assert not [line for line in lines if "maximum number of running instances" in line]
    assert [line for line in lines if "was missed by" in line]  # APScheduler's other warnings stay
    assert [line.split()[2] for line in lines if "Consumer encountered" in line] == ["WARNING", "CRITICAL"]
