"""Real Backburner processes for integration tests, and waiting on conditions without blind sleeps."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T | None], timeout: float = 30.0, interval: float = 0.02, message: str = "condition"
) -> T:
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {message}")
        time.sleep(interval)


def state(pid: int) -> str:
    """A process's state letter from /proc (R running, S sleeping, T stopped, Z zombie); "" once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return ""


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, or a process reaped between two looks, counts as dead)."""
    return state(pid) not in ("", "Z")


class WorkerProc:
    """A `backburner worker` subprocess with its own environment."""

    def __init__(self, site: Path, env: Mapping[str, str], threads: int = 2, output: Path | None = None) -> None:
        """``output``: a file for the worker's stdout and stderr (else they are the test's)."""
        self.args = [
            sys.executable,
            "-m",
            "backburner",
            "worker",
            "--site",
            str(site),
            "--threads",
            str(threads),
        ]
        self.env = {**os.environ, **env}
        self.output = output
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProc:
        if self.output is None:
            self.process = subprocess.Popen(self.args, env=self.env, start_new_session=True)
            return self
        with open(self.output, "ab") as out:
            self.process = subprocess.Popen(
                self.args, env=self.env, start_new_session=True, stdout=out, stderr=subprocess.STDOUT
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL the worker (and nothing else): a crash, as far as the system can tell."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # Two SIGTERMs: the second one skips waiting for running attempts.
        os.killpg(self.process.pid, signal.SIGTERM)
        time.sleep(0.05)
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
