"""Process supervision for `dev` and multi-process workers: start, restart on crash, stop together.

Every child dies with the supervisor, whatever kills it (``backburner.lifeline``). A child that exits is
started again, unless it keeps exiting (more than 5 times a minute): then the supervisor stops everything
and says why. Services marked ``last`` (the embedded Redis) are stopped after the others, which write to
them until they exit.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .lifeline import Lifeline

log = logging.getLogger("backburner.supervisor")

#: A service exiting more often than this within a minute is given up on.
MAX_RESTARTS_PER_MINUTE = 5


@dataclass
class Service:
    name: str
    start: Callable[[], subprocess.Popen[bytes]]
    #: Stopped after every other service.
    last: bool = False
    #: Why it may have exited (a log's tail), for the message when it is given up on.
    explain: Callable[[], str] | None = None
    process: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)


class Supervisor:
    """Keeps a set of processes running until told to stop; they die with it."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.lifeline = Lifeline()
        self.env = {**os.environ, **(env or {}), **self.lifeline.env}
        self.services: list[Service] = []
        self._stopping = False
        #: Why the supervisor gave up, when it did (``run`` returns 1 then).
        self.failure: str | None = None

    def add(self, name: str, *args: str) -> None:
        """A ``python -m backburner ...`` service."""
        command = [sys.executable, "-m", "backburner", *args]

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(command, env=self.env, start_new_session=True, pass_fds=self.lifeline.pass_fds)

        self.services.append(Service(name, start))

    def add_process(
        self,
        name: str,
        start: Callable[[], subprocess.Popen[bytes]],
        *,
        last: bool = False,
        explain: Callable[[], str] | None = None,
    ) -> None:
        """A process started by ``start`` (which must make it die with us: ``Lifeline.command``)."""
        self.services.append(Service(name, start, last=last, explain=explain))

    def _start(self, service: Service) -> bool:
        try:
            service.process = service.start()
        except Exception as exc:  # a service that cannot start counts as one that exited
            log.error("could not start %s: %s", service.name, exc)
            service.process = None
            return False
        log.info("started %s (pid %d)", service.name, service.process.pid)
        return True

    def run(self) -> int:
        """Start everything and supervise until SIGINT/SIGTERM; returns the exit code (1: gave up)."""

        def stop(signum: int, frame: object) -> None:
            self._stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        for service in sorted(self.services, key=lambda s: not s.last):  # what others need starts first
            if not self._start(service) and service.last:
                self._give_up(service, None)
        while not self._stopping:
            time.sleep(0.2)
            for service in self.services:
                code = service.process.poll() if service.process is not None else -1
                if code is None or self._stopping:
                    continue
                now = time.monotonic()
                service.restarts = [t for t in service.restarts if now - t < 60] + [now]
                if len(service.restarts) > MAX_RESTARTS_PER_MINUTE:
                    self._give_up(service, code)
                    break
                log.warning("%s exited with code %s; restarting", service.name, code)
                self._start(service)
        self.stop()
        return 1 if self.failure else 0

    def _give_up(self, service: Service, code: int | None) -> None:
        why = f"{service.name} keeps exiting (last exit code {code}); giving up"
        if service.explain is not None:
            try:
                detail = service.explain().strip()
            except OSError:
                detail = ""
            if detail:
                why += f":\n{detail}"
        log.error("%s", why)
        self.failure = why
        self._stopping = True

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM every service, the ``last`` ones once the others are gone; SIGKILL what outlives ``timeout``."""
        deadline = time.monotonic() + timeout
        for group in ([s for s in self.services if not s.last], [s for s in self.services if s.last]):
            for service in group:
                if service.process and service.process.poll() is None:
                    service.process.send_signal(signal.SIGTERM)
            for service in group:
                if service.process is None:
                    continue
                try:
                    service.process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    service.process.kill()
                    service.process.wait()
