"""Safe to run, end to end (API -> Redis -> real worker -> child): secrets stay out of handlers and logs, memory
and result limits hold, output floods are capped, big results stay out of listings, and unreadable run records
are passed over."""

from __future__ import annotations

import json
import textwrap
import urllib.parse
from pathlib import Path

import pytest

from jobs.lifecycle import new_run
from jobs.worker.reaper import Reaper
from tests.support.procs import wait_for

API_TOKEN = 'api-"token"\\-0123456789'
WEBHOOK_SECRET = "whsec_c2VjcmV0LXNpZ25pbmcta2V5LTAxMjM0NQ=="
AWS_SECRET = 'aws"se\\cret/key+0123456789'
SECRETS = {
    "BACKBURNER_API_TOKEN": API_TOKEN,
    "BACKBURNER_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "AWS_ACCESS_KEY_ID": "AKIATESTINGKEY",
    "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
}

FUNCTIONS = {
    "secrets-background": """
        import json, os, subprocess, sys, urllib.parse
        def handler(event, context):
            secret = os.environ["AWS_SECRET_ACCESS_KEY"]
            print(secret)
            print(json.dumps({"key": secret}))
            print(repr(secret))
            print(urllib.parse.quote(secret, safe=""))
            context.log.info("signing with %s", secret)
            print("A" * 4090 + secret)  # straddles the 4,096-character cut
            os.system('printf "from a shell %s\\n" "$AWS_SECRET_ACCESS_KEY"')  # below sys.stdout: fds 1 and 2
            subprocess.run(["sh", "-c", 'printf "from stderr %s\\n" "$AWS_SECRET_ACCESS_KEY" >&2'], check=True)
            os.write(1, f"written raw {secret}\\n".encode())
            sys.__stdout__.write(f"through sys.__stdout__ {secret}\\n")
            sys.__stdout__.flush()
            print("the worker's", os.environ["UPSTREAM_TOKEN"], "and the function's", os.environ["DB_PASSWORD"])
            with open("/proc/self/environ", "rb") as environ:
                raw = environ.read()
            return {
                "token": os.environ.get("BACKBURNER_API_TOKEN"),
                "webhook_secret": os.environ.get("BACKBURNER_WEBHOOK_SECRET"),
                "in_proc_environ": b"BACKBURNER_API_TOKEN" in raw or b"BACKBURNER_WEBHOOK_SECRET" in raw,
                "aws_key": os.environ.get("AWS_ACCESS_KEY_ID"),
                "greeting": os.environ.get("GREETING"),
                "debug": os.environ.get("DEBUG"),
            }
    """,
    "telltale-background": """
        import os
        def handler(event, context):
            raise ValueError(f"cannot sign with {os.environ['AWS_SECRET_ACCESS_KEY']!r}")
    """,
    "hog-background": """
        import time
        def handler(event, context):
            held = bytearray(400 << 20)
            time.sleep(600)
    """,
    "big-background": """
        def handler(event, context):
            return "x" * (10 * 1024)
    """,
    "euro-background": """
        def handler(event, context):
            return "€" * 1000
    """,
    "set-background": """
        def handler(event, context):
            return {"ids": {1, 2, 3}}
    """,
    "large-background": """
        def handler(event, context):
            return {"rows": ["row %d" % n for n in range(10000)]}
    """,
    "flood-background": """
        def handler(event, context):
            for n in range(100000):
                print("flood line", n)
            return {"printed": 100000}
    """,
}

TOML = """
[backburner.functions."secrets-background"]
  environment = { GREETING = "hello", DEBUG = true, DB_PASSWORD = "fn-Passw0rd-value" }

[backburner.functions."telltale-background"]
  retries = []

[backburner.functions."hog-background"]
  memory_limit = "150MB"
  retries = []

[backburner.functions."big-background"]
  max_result = "4KB"

[backburner.functions."euro-background"]
  max_result = "4KB"

[backburner.functions."set-background"]
  retries = ["1s"]
"""


@pytest.fixture
def site(site: Path) -> Path:
    folder = site / "netlify" / "functions"
    for name, source in FUNCTIONS.items():
        (folder / f"{name}.py").write_text(textwrap.dedent(source).lstrip())
    with (site / "netlify.toml").open("a") as toml:
        toml.write(textwrap.dedent(TOML))
    return site


def trigger(client, name: str) -> str:
    response = client.post(f"/.netlify/functions/{name}", json={})
    assert response.status_code == 202, response.text
    return response.headers["x-nf-request-id"]


def finished(client, run_id: str, timeout: float = 60.0) -> dict:
    def done():
        run = client.get(f"/api/runs/{run_id}").json()
        return run if run["status"] in ("succeeded", "failed", "cancelled") else None

    return wait_for(done, timeout=timeout, message=f"run {run_id} to finish")


def forms(secret: str) -> list[str]:
    """A secret as it appears in text, JSON, JSON in JSON, a repr and a URL."""
    escaped = json.dumps(secret)[1:-1]
    return [secret, escaped, json.dumps(escaped)[1:-1], repr(secret)[1:-1], urllib.parse.quote(secret, safe="")]


def test_handlers_never_see_backburners_secrets_and_their_logs_never_show_one(client, start_worker, runtime, tmp_path):
    output = tmp_path / "worker.log"
    start_worker(output=output, extra_env={**SECRETS, "UPSTREAM_TOKEN": "upstream-T0ken-value"})
    run = finished(client, trigger(client, "secrets-background"))
    assert run["status"] == "succeeded", run["error"]
    assert run["result"] == {
        "token": None,
        "webhook_secret": None,
        "in_proc_environ": False,
        "aws_key": "AKIATESTINGKEY",  # the worker's other variables, AWS credentials included
        "greeting": "hello",  # the function's environment table
        "debug": "true",
    }
    lines = [line["line"] for line in client.get(f"/api/runs/{run['id']}/logs").json()["lines"]]
    assert len(lines) == 11 and all("[redacted]" in line for line in lines if not line.startswith("AAAA")), lines
    assert "the worker's [redacted] and the function's [redacted]" in lines  # secrets by their variables' names
    assert [line[4090:] for line in lines if line.startswith("AAAA")] == ["[redac"]  # cut once redacted
    for said in ("from a shell", "from stderr", "written raw", "through sys.__stdout__"):
        assert f"{said} [redacted]" in lines, said  # a subprocess's and raw writes are captured as prints are
    stored = b"".join(runtime.client.lrange(runtime.store.keys.logs(run["id"]), 0, -1)).decode()
    text = output.read_text()
    for form in [*forms(AWS_SECRET), AWS_SECRET[:6], "upstream-T0ken-value", "fn-Passw0rd-value"]:
        assert form not in stored and form not in text, form
    assert "containment: " in text and "subreaper" in text  # the worker's start line says how it contains

    failed = finished(client, trigger(client, "telltale-background"))
    assert failed["status"] == "failed" and "[redacted]" in failed["error"]["message"]
    shown = json.dumps(failed["error"])
    assert not [form for form in forms(AWS_SECRET) if form in shown or form in failed["error"]["traceback"]]
    # The worker's line for the attempt says what failed, redacted as the run's record is.
    said = wait_for(lambda: [line for line in output.read_text().splitlines() if failed["id"] in line], message="it")
    assert "attempt 1 of telltale-background: error: ValueError: cannot sign with '[redacted]'" in said[0], said
    assert not [form for form in forms(AWS_SECRET) if form in output.read_text()]


def test_an_attempt_over_its_memory_limit_fails_naming_the_limit_and_the_worker_carries_on(client, worker):
    hog = trigger(client, "hog-background")
    neighbour = trigger(client, "echo-background")
    run = finished(client, hog)
    assert run["status"] == "failed" and len(run["attempts"]) == 1
    error = run["attempts"][0]["error"]
    assert error["type"] == "MemoryLimitExceeded" and "over its memory_limit of 150 MB" in error["message"]
    assert finished(client, neighbour)["status"] == "succeeded"
    assert worker.process is not None and worker.process.poll() is None
    assert finished(client, trigger(client, "echo-background"))["status"] == "succeeded"


@pytest.mark.parametrize(("name", "error_type", "says"), [
    ("big-background", "ResultTooLarge", "10 KB of JSON, over its max_result of 4 KB"),
    ("set-background", "InvalidResult", "not JSON"),
])  # fmt: skip
def test_a_result_too_big_or_not_json_fails_the_run_at_once(client, worker, name, error_type, says):
    run = finished(client, trigger(client, name))
    assert run["status"] == "failed" and len(run["attempts"]) == 1, run["attempts"]  # retries are configured
    assert run["error"]["type"] == error_type and says in run["error"]["message"]


def test_a_results_size_is_its_bytes_as_served_not_its_ascii_escaped_json(client, worker):
    run = finished(client, trigger(client, "euro-background"))  # 3,002 bytes of UTF-8 JSON; 6,002 escaped
    assert run["status"] == "succeeded", run["error"]
    assert run["result"] == "€" * 1000 and run["result_size"] == len(
        json.dumps("€" * 1000, ensure_ascii=False).encode()
    )
    [listed] = client.get("/api/runs", params={"function": "euro-background"}).json()["runs"]
    assert listed["result"] is None and listed["result_size"] == 3002


def test_listings_carry_a_big_results_size_and_only_the_run_carries_it(client, worker, runtime):
    run_id = trigger(client, "large-background")
    run = finished(client, run_id)
    size = len(json.dumps(run["result"], separators=(",", ":")))
    assert run["status"] == "succeeded" and len(run["result"]["rows"]) == 10000 and run["result_size"] == size
    listing = client.get("/api/runs", params={"function": "large-background"})
    [listed] = listing.json()["runs"]
    assert listed["result"] is None and listed["result_size"] == size
    assert len(listing.content) < 4096
    assert len(runtime.client.get(runtime.store.keys.run(run_id))) < 4096  # the record itself stays small
    page = client.get("/runs")
    assert page.status_code == 200 and len(page.content) < size
    assert client.get(f"/runs/{run_id}").status_code == 200


def test_an_output_flood_is_capped_and_says_how_many_lines_it_dropped(client, worker):
    run = finished(client, trigger(client, "flood-background"))
    assert run["status"] == "succeeded" and run["result"] == {"printed": 100000}
    logs = client.get(f"/api/runs/{run['id']}/logs").json()
    assert logs["dropped"] > 50_000
    printed = [int(line["line"].split()[-1]) for line in logs["lines"] if line["stream"] == "stdout"]
    assert len(logs["lines"]) <= 5000 and printed == sorted(printed) and len(printed) + logs["dropped"] <= 100000
    notes = [line["line"] for line in logs["lines"] if line["stream"] == "log"]
    assert notes and all("log lines dropped: over the cap of 1000 lines/s" in note for note in notes)
    assert sum(int(note.split()[1]) for note in notes) == logs["dropped"]


def test_unreadable_run_records_are_skipped_by_listings_the_dashboard_and_the_reaper(client, runtime, settings, caplog):
    store, keys = runtime.store, runtime.store.keys
    good, _ = store.create(new_run(runtime.site.get("echo-background"), "api"), {})
    lost, _ = store.create(new_run(runtime.site.get("echo-background"), "api"), {})
    runtime.lifecycle.claim(lost.id, lost.token, "a-worker-that-died")
    older = json.loads(store.client.get(keys.run(good.id)))
    older.update(id="01AAAAAAAAAAAAAAAAAAAAAAA1", retry_delays_s=[None])  # what `retries = [inf]` once stored
    bad = {"01AAAAAAAAAAAAAAAAAAAAAAA1": json.dumps(older), "01AAAAAAAAAAAAAAAAAAAAAAA2": "{not json"}
    for run_id, raw in bad.items():
        store.client.set(keys.run(run_id), raw)
        store.client.zadd(keys.runs, {run_id: 0})
        store.client.zadd(keys.function_runs("echo-background"), {run_id: 0})
        store.client.zadd(keys.active, {run_id: 0})

    listing = client.get("/api/runs")
    assert listing.status_code == 200
    assert {run["id"] for run in listing.json()["runs"]} == {good.id, lost.id}
    assert client.get("/api/runs", params={"function": "echo-background"}).status_code == 200
    for page in ("/", "/runs", "/functions", "/runs?function=echo-background"):
        assert client.get(page).status_code == 200, page
    for run_id in bad:
        answer = client.get(f"/api/runs/{run_id}")
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "run_unreadable"

    reaper = Reaper(settings, runtime.lifecycle, "the-reaper")
    assert reaper.sweep() >= 1  # the lost run is resumed; the unreadable ones do not stop the sweep
    resumed = store.get(lost.id)
    assert resumed.status == "queued" and resumed.attempts[-1].outcome == "lost"
    said = [r.getMessage() for r in caplog.records if "cannot be read and is skipped" in r.getMessage()]
    assert sorted(message.split()[1].rstrip(":") for message in said) == sorted(bad)  # each logged, once
