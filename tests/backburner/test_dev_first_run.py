"""`backburner dev` as a newcomer meets it: what it says while starting, a webhook received and verified
locally with the secret it shows (the README's receiver), and its JSON logs, line by line."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from backburner import dev as devmode
from jobs.delivery.webhooks import deliver
from jobs.errors import InvalidInput
from jobs.settings import Settings
from tests.support.procs import wait_for
from tests.support.servers import DevProc, free_port

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SECRET = re.compile(r"signed with (whsec_[A-Za-z0-9+/=]{4})\.\.\. ")


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A copy of the example site `bin/dev` serves."""
    site = tmp_path / "site"
    shutil.copytree(ROOT / "netlify", site / "netlify", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "netlify.toml", site / "netlify.toml")
    return site


def newcomer_env() -> dict[str, str]:
    """No Redis, no secrets, no allow list: what someone who just cloned the repository has."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKBURNER_") and k != "REDIS_URL"}
    return {**env, "COLUMNS": "200"}


def start_dev(site: Path, data: Path, output: Path, **extra: str) -> DevProc:
    proc = DevProc(site, {}, output=output)
    proc.env = {**newcomer_env(), **extra}
    proc.args += ["--data-dir", str(data)]
    return proc.start()


def read(output: Path) -> str:
    return output.read_text(encoding="utf-8", errors="replace")


def once_it_says(output: Path, text: str, timeout: float = 30) -> str:
    """The whole output, once ``text`` is in it."""
    return wait_for(lambda: (lambda seen: seen if text in seen else None)(read(output)), timeout, message=text)


def stop(proc: DevProc) -> None:
    assert proc.process is not None
    proc.process.send_signal(signal.SIGINT)  # Ctrl-C
    proc.process.wait(timeout=60)


def test_dev_says_what_it_starts_when_it_is_ready_and_where_things_are(example, tmp_path):
    data, output = tmp_path / "data", tmp_path / "dev.log"
    proc = start_dev(example, data, output)
    try:
        text = once_it_says(output, "stop      Ctrl-C")
    finally:
        stop(proc)
    url = proc.url
    expected = [
        rf"Backburner dev: {re.escape(str(example))} \(9 functions, 2 schedules\)",
        rf"  Redis     embedded, up in \d+\.\d s \(data in {re.escape(str(data / 'redis'))}, password protected\)",
        rf"  starting  the API on {re.escape(url)}, a worker \(2 threads\) and the scheduler \.\.\.",
        rf"Ready in \d+\.\d s: {re.escape(url)}/ \(the dashboard; no login in dev\)",
        rf"  try       curl -i -X POST {re.escape(url)}/\.netlify/functions/hello",
        r"  webhooks  signed with whsec_[A-Za-z0-9+/=]{4}\.\.\. "
        rf"\(kept in {re.escape(str(data / 'webhook-secret'))}; "
        r"`backburner webhooks secret` prints it\)",
        r"            receivers on this machine are allowed in dev \(elsewhere: BACKBURNER_WEBHOOK_ALLOW\)",
        rf"  data      {re.escape(str(data))} \(Redis, artifacts; move it with --data-dir\)",
        r"  stop      Ctrl-C",
    ]
    position = 0
    for pattern in expected:  # each line, in this order (the services' own log lines come in between)
        match = re.compile(f"^{pattern}$", re.MULTILINE).search(text, position)
        assert match, f"{pattern!r} not found after position {position} in:\n{text}"
        position = match.end()
    assert "Traceback" not in text and "Warning" not in text
    # --data-dir is where everything went; the site stays clean.
    assert (data / "redis" / "appendonlydir").is_dir() or any((data / "redis").glob("*.aof*"))
    assert (data / "webhook-secret").stat().st_mode & 0o777 == 0o600
    assert not (example / ".backburner").exists()


def readme_block(language: str, containing: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", README, re.DOTALL)
    return next(block for block in blocks if containing in block)


def test_a_webhook_received_in_dev_verifies_with_the_secret_dev_shows(example, tmp_path):
    """The README's quick start: receiver.py (standardwebhooks), the secret from `backburner webhooks secret`,
    a loopback destination added to netlify.toml while dev runs, no BACKBURNER_WEBHOOK_ALLOW."""
    data, output, port = tmp_path / "data", tmp_path / "dev.log", free_port()
    proc = start_dev(example, data, output)
    receiver = None
    try:
        banner = wait_for(lambda: SECRET.search(read(output)), timeout=30, message="the secret in the banner")
        shown = subprocess.run(
            [sys.executable, "-m", "backburner", "webhooks", "secret", "--site", str(example), "--data-dir", str(data)],
            env=newcomer_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert shown.returncode == 0 and shown.stdout.strip().startswith(banner.group(1)), shown.stderr
        assert shown.stdout.strip() not in read(output)  # the banner shows where the secret is, not the secret
        script = tmp_path / "receiver.py"
        script.write_text(readme_block("python", "# receiver.py").replace("9000", str(port)))
        received = tmp_path / "received.txt"
        with received.open("wb") as sink:
            receiver = subprocess.Popen(
                [sys.executable, str(script)],
                env={**newcomer_env(), "WEBHOOK_SECRET": shown.stdout.strip()},
                stdout=sink,
                stderr=subprocess.DEVNULL,
            )
        destination = readme_block("toml", "on_success").replace("9000", str(port))
        with (example / "netlify.toml").open("a") as toml:
            toml.write("\n" + destination)
        with httpx.Client(base_url=proc.url, timeout=30) as http:

            def configured() -> bool:
                listing = http.get("/api/functions").json()
                noop = next(f for f in listing if f["name"] == "noop-background")
                return noop["destinations"]["on_success"] == [f"http://127.0.0.1:{port}/"]

            wait_for(configured, timeout=30, message="dev to pick up the edited netlify.toml")
            answer = http.post("/.netlify/functions/noop-background")
            assert answer.status_code == 202
            run_id = answer.headers["x-nf-request-id"]
            line = f"run.succeeded {run_id} succeeded"
            wait_for(lambda: line in received.read_text(), timeout=60, message="the verified webhook")
            deliveries = wait_for(lambda: http.get(f"/api/runs/{run_id}").json()["deliveries"], timeout=30)
            assert deliveries[-1]["status"] == 204 and deliveries[-1]["ok"] is True
            # The receiver really verifies: the same request with another body is refused.
            forged = httpx.post(
                f"http://127.0.0.1:{port}/",
                content=b'{"type":"run.succeeded","data":{"id":"x","status":"succeeded"}}',
                headers={
                    "webhook-id": "msg_x",
                    "webhook-timestamp": str(int(time.time())),
                    "webhook-signature": "v1,AAAA",
                },
            )
            assert forged.status_code == 401
            assert "refused: No matching signature found" in once_it_says(received, "refused")
    finally:
        if receiver is not None:
            receiver.kill()
            receiver.wait()
        stop(proc)


def test_every_line_of_a_dev_process_in_json_mode_is_a_json_object(example, tmp_path):
    data, output = tmp_path / "data", tmp_path / "dev.log"
    proc = start_dev(example, data, output, BACKBURNER_LOG_FORMAT="json")
    try:
        once_it_says(output, "Ctrl-C")
        with httpx.Client(base_url=proc.url, timeout=30) as http:
            assert http.post("/.netlify/functions/hello").status_code == 200
            assert http.get("/.netlify/functions/no-such-function").status_code == 404
            run_id = http.post("/.netlify/functions/noop-background").headers["x-nf-request-id"]
            wait_for(lambda: http.get(f"/api/runs/{run_id}").json()["status"] == "succeeded", timeout=60)
    finally:
        stop(proc)
    raw = output.read_bytes()
    assert b"\x1b" not in raw and b"\\u001b" not in raw  # no terminal colours, not even escaped ones
    lines = raw.decode("utf-8").splitlines()
    entries = [json.loads(line) for line in lines]  # every line, from every process, is one JSON object
    assert all(isinstance(e, dict) and {"time", "level", "logger", "message"} <= e.keys() for e in entries)
    loggers = {e["logger"] for e in entries}
    for expected in ("backburner.dev", "backburner.supervisor", "backburner.worker", "backburner.scheduler"):
        assert expected in loggers
    assert {"uvicorn.error"} <= loggers and any(name.startswith("dramatiq") for name in loggers), loggers
    assert {e["service"] for e in entries} >= {"dev", "api", "worker", "scheduler"}
    assert not any("color_message" in e for e in entries)
    assert not any("whsec_" in line and "[redacted]" not in line for line in lines)  # the secret is never logged
    ready = next(e for e in entries if e["message"].startswith("Ready in"))
    assert ready["logger"] == "backburner.dev" and ready["ready_s"] > 0


# -- the parts, one by one ---------------------------------------------------------------------------


def test_the_dev_secret_is_made_once_and_kept_private(tmp_path):
    first = devmode.dev_secret(tmp_path)
    assert first.startswith("whsec_") and len(first) > 40
    assert devmode.dev_secret(tmp_path) == first
    assert (tmp_path / "webhook-secret").stat().st_mode & 0o777 == 0o600


def test_readiness_says_what_it_still_waits_for(monkeypatch):
    said: list[str] = []
    monkeypatch.setattr(devmode, "say", lambda text, **fields: said.append(text))
    monkeypatch.setattr(devmode, "PATIENCE_S", 0.0)
    waiting = devmode.Readiness(f"http://127.0.0.1:{free_port()}", time.monotonic(), ["after"])
    waiting.start()
    try:
        wait_for(lambda: said, timeout=10, message="a note")
        assert re.fullmatch(r"still starting after \d+ s: the API does not answer yet", said[0])
        assert not waiting.ready.is_set()
    finally:
        waiting.stop()  # else it goes on waiting, and saying so, for the rest of the session
        waiting.join(5)
    assert not waiting.is_alive()


def test_dev_allows_loopback_receivers_but_private_and_link_local_still_need_the_allow_list():
    dev, strict = Settings(dev=True), Settings(dev=False)
    closed = f"http://127.0.0.1:{free_port()}/hook"

    def attempt(url: str, settings: Settings) -> object:
        return deliver(url, "msg_1", "run.succeeded", {}, secret="whsec_" + "A" * 43 + "=", attempt=1,
                       timeout_s=2, allow=settings.webhook_allow_list)  # fmt: skip

    for url in (closed, f"http://[::1]:{free_port()}/", f"http://localhost:{free_port()}/"):
        result = attempt(url, dev)  # allowed: the attempt is made (and fails to connect)
        assert getattr(result, "error", "").startswith("connection"), result
    for url in ("http://10.0.0.1/hook", "http://192.168.1.20/hook", "http://169.254.169.254/latest/meta-data"):
        with pytest.raises(InvalidInput, match="BACKBURNER_WEBHOOK_ALLOW"):
            attempt(url, dev)
    with pytest.raises(InvalidInput, match="loopback"):
        attempt(closed, strict)
    assert Settings(dev=True, webhook_allow="10.0.0.0/8").webhook_allow_list[0] == "10.0.0.0/8"


def test_the_secret_command_without_dev_having_run_says_what_to_do(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "backburner", "webhooks", "secret", "--site", str(tmp_path)],
        env=newcomer_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and done.stdout == "" and len(done.stderr.splitlines()) == 1
    assert "no webhook secret in" in done.stderr and "`backburner dev` makes one there" in done.stderr
    with_env = subprocess.run(
        [sys.executable, "-m", "backburner", "webhooks", "secret"],
        env={**newcomer_env(), "BACKBURNER_WEBHOOK_SECRET": "whsec_abc"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert with_env.stdout.strip() == "whsec_abc"
