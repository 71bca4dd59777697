"""What `backburner dev` does besides supervising: checks before anything starts, the dev webhook secret, and
telling the person at the terminal what is going on (what starts, when it is ready, what to try).

In text mode that is a short banner on stderr; with ``BACKBURNER_LOG_FORMAT=json`` the same lines are log
records, so every line dev writes is JSON.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import os
import secrets
import socket
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from rich.markup import escape

from jobs.errors import ConfigError
from jobs.settings import Settings, without_password
from jobs.site import Site

from .options import console
from .redis_server import RedisServer
from .startup import json_logs, report
from .supervisor import Supervisor

log = logging.getLogger("backburner.dev")

#: The dev webhook secret, in the data folder: kept across restarts, readable by its owner only.
SECRET_FILE = "webhook-secret"
#: Seconds between "still starting" notes while the services come up.
PATIENCE_S = 15.0


def shown(path: Path) -> str:
    """``path`` relative to the working directory when it is inside it (shorter to read), else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd())) or "."
    except ValueError:
        return str(path.resolve())


def say(text: str, **fields: object) -> None:
    """One line for the person who started dev: rich text on stderr, or an INFO record in JSON mode."""
    if json_logs():
        log.info(text, extra=fields)
    else:
        console.print(escape(text), highlight=False)


def check_port(host: str, port: int) -> None:
    """Fail now, in one line, if the API could not listen (rather than after the services started)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}): is another `backburner dev` running? "
                "Stop it, or choose another port with --port"
            ) from None


def prepare_data_dir(path: Path) -> None:
    """Create the data folder, or say in one line why it cannot be."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as exc:
        raise ConfigError(
            f"data folder {path}: {exc.strerror or exc}; choose a writable folder with --data-dir "
            "or BACKBURNER_DATA_DIR"
        ) from None


def secret_path(data_path: Path) -> Path:
    return data_path / SECRET_FILE


def dev_secret(data_path: Path) -> str:
    """The secret dev signs webhooks with: made once (32 random bytes, ``whsec_`` and base64), then reused."""
    path = secret_path(data_path)
    try:
        existing = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        existing = ""
    if existing.startswith("whsec_"):
        return existing
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode("ascii")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.write(secret + "\n")
    return secret


def api_url(host: str, port: int) -> str:
    """Where this machine reaches the API (a wildcard address is reached on loopback)."""
    reach = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{reach}]:{port}" if ":" in reach else f"http://{reach}:{port}"


class Readiness(threading.Thread):
    """Waits for ``/readyz`` (the API answers, Redis too, a worker heartbeats), then says "ready" once;
    meanwhile, every ``PATIENCE_S``, says what it is still waiting for."""

    def __init__(self, url: str, started: float, lines: list[str], *, where: str | None = None) -> None:
        """``where``: what the ready line points at (default: the dashboard on the API's listener)."""
        super().__init__(name="backburner-dev-ready", daemon=True)
        self.url = url
        self.started = started
        self.lines = lines
        self.where = where or f"{url}/ (the dashboard; no login in dev)"
        self.ready = threading.Event()
        self._stopped = threading.Event()

    def stop(self) -> None:
        """Stop waiting (dev is going away before it was ready)."""
        self._stopped.set()

    def _status(self) -> str | None:
        """None when ready, else what is missing. (http.client, not httpx: its requests are not logged.)"""
        parts = urlsplit(self.url)
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=2.0)
        try:
            connection.request("GET", "/readyz")
            response = connection.getresponse()
            status, body = response.status, response.read()
        except OSError:
            return "the API does not answer yet"
        finally:
            connection.close()
        if status == 200:
            return None
        try:
            state = json.loads(body).get("status")
        except (ValueError, AttributeError):
            state = None
        if state == "no_workers":
            return "no worker has reported in yet"
        return f"/readyz answers {status} ({state or 'no details'})"

    def run(self) -> None:
        note_at = self.started + PATIENCE_S
        while (missing := self._status()) is not None:
            if time.monotonic() >= note_at:
                say(f"still starting after {time.monotonic() - self.started:.0f} s: {missing}")
                note_at = time.monotonic() + 2 * PATIENCE_S
            if self._stopped.wait(0.2):
                return
        self.ready.set()
        elapsed = time.monotonic() - self.started
        say(f"Ready in {elapsed:.1f} s: {self.where}", ready_s=round(elapsed, 2))
        for line in self.lines:
            say(line)


def run(
    settings: Settings,
    site: Site,
    *,
    host: str,
    port: int,
    threads: int,
    started: float,
    dashboard: tuple[str, int] | None = None,
) -> None:
    """Check, start Redis (unless REDIS_URL is set) and the three services, say when they are ready, and
    supervise them until Ctrl-C; exits the process. ``dashboard``: its own listener (host, port), if any."""
    check_port(host, port)
    if dashboard is not None:
        if dashboard[1] == port:
            raise ConfigError(f"--dashboard-port must differ from --port ({port})")
        check_port(*dashboard)
    prepare_data_dir(settings.data_path)
    url = api_url(host, port)
    env = {
        "BACKBURNER_DEV": "1",
        "BACKBURNER_SITE": str(settings.site.resolve()),
        "BACKBURNER_DATA_DIR": str(settings.data_path),
        # Functions that call the site's own API (the aggregation example does) find it on the port in use.
        "BACKBURNER_URL": os.environ.get("BACKBURNER_URL") or url,
    }
    if settings.webhook_secret:
        signing = "signed with BACKBURNER_WEBHOOK_SECRET from the environment"
    else:
        env["BACKBURNER_WEBHOOK_SECRET"] = secret = dev_secret(settings.data_path)
        where = shown(secret_path(settings.data_path))
        # Only enough to tell secrets apart: terminal output ends up in files and bug reports too.
        shown_secret = "the dev secret" if json_logs() else f"{secret[:10]}..."
        signing = f"signed with {shown_secret} (kept in {where}; `backburner webhooks secret` prints it)"
    schedules = sum(1 for function in site.functions.values() if function.schedule)
    counted = f"{_count(len(site.functions), 'function')}, {_count(schedules, 'schedule')}"
    say(f"Backburner dev: {settings.site.resolve()} ({counted})")
    starting = f"  starting  the API on {url}, a worker ({threads} threads) and the scheduler ..."
    supervisor = Supervisor(env)
    server = None
    if settings.redis_url:
        say(f"  Redis     {without_password(settings.redis_url)} (REDIS_URL)")
        say(starting)
    else:
        # A password of its own each time (another local user cannot read or write runs), given to the
        # services in REDIS_URL; the server dies with dev and is started again if it crashes.
        server = RedisServer(
            settings.data_path / "redis", password=secrets.token_urlsafe(24), wrap=supervisor.lifeline.command
        )
        supervisor.env["REDIS_URL"] = server.url
        embedded, starts = server, 0

        def start_redis() -> subprocess.Popen[bytes]:
            nonlocal starts
            began = time.monotonic()
            process = embedded.start().process
            assert process is not None
            took, starts = time.monotonic() - began, starts + 1
            if starts == 1:  # the services start right after it, in the order they were added
                data = shown(embedded.data_dir)
                say(f"  Redis     embedded, up in {took:.1f} s (data in {data}, password protected)")
                say(starting)
            else:
                say(f"  Redis     embedded, restarted in {took:.1f} s")
            return process

        supervisor.add_process("redis", start_redis, last=True, explain=server.log_tail)
    listener = ["--dashboard-port", str(dashboard[1]), "--dashboard-host", dashboard[0]] if dashboard else []
    supervisor.add("api", "api", "--host", host, "--port", str(port), *listener)
    supervisor.add("worker", "worker", "--processes", "1", "--threads", str(threads))
    supervisor.add("scheduler", "scheduler")
    banner = [
        *([f"  try       curl -i -X POST {url}/.netlify/functions/{tried}"] if (tried := _to_try(site)) else []),
        f"  webhooks  {signing}",
        "            receivers on this machine are allowed in dev (elsewhere: BACKBURNER_WEBHOOK_ALLOW)",
        f"  data      {shown(settings.data_path)} (Redis, artifacts; move it with --data-dir)",
        "  stop      Ctrl-C",
    ]
    login = "log in with BACKBURNER_API_TOKEN" if settings.api_token else "no login in dev"  # a token set is asked for
    ready = f"{url}/ (the dashboard; {login})"
    if dashboard is not None:
        ready = f"{url} (functions and the API); the dashboard on {api_url(*dashboard)}/ ({login})"
    Readiness(url, started, banner, where=ready).start()
    try:
        code = supervisor.run()
    finally:
        if server:
            server.stop()
    if supervisor.failure:
        report(f"dev stopped: {supervisor.failure}", command="dev")
    os._exit(code)


def _to_try(site: Site) -> str | None:
    """The function the banner suggests calling: a synchronous one before a background one, ``hello`` (the
    example's) before others, then by name; never a scheduled one (it answers no URL outside dev)."""
    unscheduled = sorted((f.background, f.name != "hello", f.name) for f in site.functions.values() if not f.schedule)
    return unscheduled[0][2] if unscheduled else None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
