"""Process supervision for `dev` and multi-process workers: start, restart on crash, stop together."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

log = logging.getLogger("backburner.supervisor")


@dataclass
class Service:
    name: str
    args: Sequence[str]
    process: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)


class Supervisor:
    """Keeps a set of `python -m backburner ...` processes running until told to stop."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = {**os.environ, **(env or {})}
        self.services: list[Service] = []
        self._stopping = False

    def add(self, name: str, *args: str) -> None:
        self.services.append(Service(name, [sys.executable, "-m", "backburner", *args]))

    def _start(self, service: Service) -> None:
        service.process = subprocess.Popen(service.args, env=self.env, start_new_session=True)
        log.info("started %s (pid %d)", service.name, service.process.pid)

    def run(self) -> int:
        """Start everything and supervise until SIGINT/SIGTERM; returns the exit code."""

        def stop(signum: int, frame: object) -> None:
            self._stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        for service in self.services:
            self._start(service)
        while not self._stopping:
            time.sleep(0.2)
            for service in self.services:
                assert service.process is not None
                code = service.process.poll()
                if code is None or self._stopping:
                    continue
                now = time.monotonic()
                service.restarts = [t for t in service.restarts if now - t < 60] + [now]
                if len(service.restarts) > 5:
                    log.error("%s keeps exiting (code %s); giving up", service.name, code)
                    self._stopping = True
                    break
                log.warning("%s exited with code %s; restarting", service.name, code)
                self._start(service)
        self.stop()
        return 0

    def stop(self, timeout: float = 30.0) -> None:
        for service in self.services:
            if service.process and service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for service in self.services:
            if service.process is None:
                continue
            try:
                service.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                service.process.kill()
                service.process.wait()
