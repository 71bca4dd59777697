"""`backburner dev` as a real process tree: its embedded Redis is private and restarted when it crashes, and
everything it started dies with it, even when it is killed with SIGKILL."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest
import redis

from tests.support.procs import wait_for
from tests.support.servers import free_port
from tests.support.sites import make_site


@pytest.fixture
def dev(tmp_path: Path):
    site = make_site(tmp_path / "site")
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("BACKBURNER_", "REDIS_URL"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "backburner", "dev", "--site", str(site), "--port", str(port), "--threads", "2"],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def accepts() -> bool:
        try:
            return httpx.post(f"{url}/.netlify/functions/echo-background", timeout=2).status_code == 202
        except httpx.HTTPError:
            return False

    try:
        wait_for(accepts, timeout=60, interval=0.2, message="dev to accept a run")
        yield process, site, url, accepts
    finally:
        started: list[psutil.Process] = []
        with contextlib.suppress(psutil.Error):
            started = psutil.Process(process.pid).children(recursive=True)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        for child in started:  # they die with dev; this only tidies up after a failed test
            with contextlib.suppress(psutil.Error):
                child.kill()


def redis_of(process: subprocess.Popen[bytes]) -> psutil.Process | None:
    """dev's running redis-server (None while there is none)."""
    for child in psutil.Process(process.pid).children():
        with contextlib.suppress(psutil.NoSuchProcess):
            if "redis-server" in child.name() and child.status() != psutil.STATUS_ZOMBIE:
                return child
    return None


def test_the_embedded_redis_is_private(dev):
    process, site, _, _ = dev
    folder = site / ".backburner" / "redis"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = [path for path in folder.rglob("*") if path.is_file()]
    assert files and all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in files)
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o700 for path in folder.rglob("*") if path.is_dir())
    server = redis_of(process)
    assert server is not None
    port = next(c.laddr.port for c in server.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN)
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=port).ping()
    assert "requirepass" not in " ".join(server.cmdline())  # the password is in the 0600 config, not on `ps`
    assert "requirepass" in (folder / "redis.conf").read_text()


def test_a_crashed_embedded_redis_is_restarted(dev):
    process, _, _, accepts = dev
    first = redis_of(process)
    assert first is not None
    first.kill()
    wait_for(lambda: (server := redis_of(process)) and server.pid != first.pid, timeout=30, message="a new redis")
    wait_for(accepts, timeout=60, interval=0.2, message="dev to accept runs again")
    assert process.poll() is None


def test_everything_dev_started_dies_with_it_even_by_sigkill(dev):
    process, _, url, _ = dev
    tree = psutil.Process(process.pid).children(recursive=True)
    assert {"redis-server"} <= {p.name() for p in tree} and len(tree) >= 5  # redis, api, worker (+ its pool), scheduler
    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    def gone() -> bool:
        return not [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]

    wait_for(gone, timeout=20, message="every process dev started to die with it")
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{url}/healthz", timeout=2)


def test_a_service_that_keeps_crashing_stops_the_supervisor_saying_why():
    from backburner.supervisor import Supervisor

    supervisor = Supervisor()
    supervisor.add_process("redis", lambda: subprocess.Popen(["false"]), last=True, explain=lambda: "port in use")
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        assert supervisor.run() == 1
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert supervisor.failure is not None
    assert supervisor.failure.startswith("redis keeps exiting (last exit code 1); giving up") and "port in use" in (
        supervisor.failure
    )


def test_the_banner_suggests_a_function_the_site_has(tmp_path):
    """``hello`` in the example; elsewhere a synchronous function before a background one, never a scheduled one."""
    from backburner.dev import _to_try
    from jobs.site import load_site

    plain = "def handler(event, context):\n    return {'statusCode': 200}\n"
    toml = '[functions]\n  directory = "netlify/functions"\n[functions.alpha]\n  schedule = "@daily"\n'
    site = make_site(tmp_path / "a", {"alpha": plain, "beta-background": plain, "gamma": plain}, toml)
    assert _to_try(load_site(site)) == "gamma"
    site = make_site(tmp_path / "b", {"alpha": plain, "beta-background": plain}, toml)
    assert _to_try(load_site(site)) == "beta-background"
    assert _to_try(load_site(make_site(tmp_path / "c", {"alpha": plain}, toml))) is None
    assert _to_try(load_site(Path(__file__).parents[2])) == "hello"
