"""A real `backburner api` subprocess on a free port, for tests that need a real HTTP server (SSE, browsers)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from .procs import wait_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ApiProc:
    """`python -m backburner api` with its own environment; ``url`` once ``start()`` returned."""

    def __init__(
        self,
        site: Path,
        env: Mapping[str, str],
        port: int | None = None,
        args: Sequence[str] = (),
        log: Path | None = None,
        command: str = "api",
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [sys.executable, "-m", "backburner", command, "--site", str(site), "--port", str(self.port), *args]
        self.env = {**os.environ, **env}
        self.log = log  # stdout and stderr go there when given
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> ApiProc:
        output = self.log.open("ab") if self.log else None
        self.process = subprocess.Popen(
            self.args, env=self.env, start_new_session=True, stdout=output, stderr=subprocess.STDOUT if output else None
        )

        def up() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"`backburner api` exited with code {self.process.returncode}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=timeout, interval=0.1, message="the API to answer /healthz")
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


class DevProc:
    """`python -m backburner dev` (API, worker and scheduler under one supervisor) on a free port.

    Its children run in their own sessions, so stopping means SIGTERM to `dev`, which stops them.
    """

    def __init__(
        self, site: Path, env: Mapping[str, str], port: int | None = None, *, output: Path | None = None
    ) -> None:
        """``output``: a file that gets everything dev and its services print (stdout and stderr)."""
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [sys.executable, "-m", "backburner", "dev", "--site", str(site), "--port", str(self.port)]
        self.args += ["--threads", "2"]
        self.env = {**os.environ, **env}
        self.output = output
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> DevProc:
        """Start and wait until the API answers and the worker heartbeats (/readyz is 200)."""
        if self.output is None:
            self.process = subprocess.Popen(self.args, env=self.env, start_new_session=True)
        else:
            with self.output.open("ab") as sink:
                self.process = subprocess.Popen(
                    self.args, env=self.env, start_new_session=True, stdout=sink, stderr=subprocess.STDOUT
                )

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"`backburner dev` exited with code {self.process.returncode}")
            try:
                return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=timeout, interval=0.1, message="`backburner dev` to be ready")
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
