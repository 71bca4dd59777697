"""Each attempt runs in a warm child process that is killed at its limit, whatever it is doing.

Children come from a fork server (a small clean process that preloads this module and
``jobs.execution.child``), so they never inherit the worker's threads or Redis connections, and starting one
costs a fork, not an interpreter start-up. A child serves many attempts, one at a time, like a warm
Lambda container; it is replaced after a timeout, a crash, a cancel, or ``max_runs`` attempts.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import pickle
import queue
import select
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from ..runs import Result
from .child import child_main
from .task import Task


@dataclass(eq=False)
class _Child:
    process: BaseProcess
    conn: Connection
    runs: int = 0
    #: Watches ``conn``: readable when the child answers, hung up when it dies. One per child, because
    #: ``Connection.poll`` builds a selector on every call and the worker polls once per attempt.
    poller: select.poll = field(init=False)

    def __post_init__(self) -> None:
        self.poller = select.poll()
        self.poller.register(self.conn.fileno(), select.POLLIN)

    def wait(self, timeout_s: float) -> bool:
        return bool(self.poller.poll(timeout_s * 1000))


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


class ChildPool:
    """A pool of warm child processes; ``run`` is thread-safe and blocks for one attempt."""

    def __init__(self, size: int, *, max_runs: int = 1000, preload: Sequence[str] = ()) -> None:
        self.size = max(1, size)
        self.max_runs = max_runs
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload(["jobs.execution.forkserver", "jobs.execution.isolation", *preload])
        self._idle: queue.LifoQueue[_Child] = queue.LifoQueue()
        self._all: set[_Child] = set()
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> ChildPool:
        """Pre-fork the pool so the first attempts do not pay for a fork."""
        for _ in range(self.size):
            self._idle.put(self._spawn())
        return self

    def _spawn(self) -> _Child:
        parent_end, child_end = self._ctx.Pipe()
        process = self._ctx.Process(target=child_main, args=(child_end,), daemon=True, name="backburner-child")
        process.start()
        child_end.close()
        child = _Child(process, parent_end)
        with self._lock:
            self._all.add(child)
        return child

    def _acquire(self) -> _Child:
        while True:
            try:
                child = self._idle.get_nowait()
            except queue.Empty:
                return self._spawn()
            if not child.wait(0):  # an idle child never writes: anything there means it died meanwhile
                return child
            self._discard(child, kill=True)

    def _release(self, child: _Child) -> None:
        child.runs += 1
        if self._closed or child.runs >= self.max_runs:
            self._retire(child)
        else:
            self._idle.put(child)

    def _discard(self, child: _Child, *, kill: bool = False) -> int | None:
        if kill and child.process.is_alive():
            child.process.kill()
        child.process.join(timeout=5)
        child.conn.close()
        with self._lock:
            self._all.discard(child)
        return child.process.exitcode

    def _retire(self, child: _Child) -> None:
        with contextlib.suppress(OSError):
            child.conn.send_bytes(pickle.dumps(None))  # asks the child to exit cleanly
        self._discard(child)

    def run(
        self,
        task: Task,
        timeout_s: float,
        *,
        cancelled: Callable[[], bool] | None = None,
        poll_s: float = 0.25,
    ) -> Result:
        """Run ``task`` in a child; kill the child at ``timeout_s`` or when ``cancelled()`` turns true."""
        started = time.monotonic()
        deadline = started + timeout_s
        child = self._acquire()
        data = pickle.dumps(task, pickle.HIGHEST_PROTOCOL)  # plain pickle: multiprocessing's costs more per call
        try:
            child.conn.send_bytes(data)
        except OSError:
            self._discard(child, kill=True)
            child = self._spawn()
            child.conn.send_bytes(data)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._discard(child, kill=True)
                return Result(
                    "timeout",
                    error={
                        "type": "TimeLimitExceeded",
                        "message": f"{task.function} exceeded its time limit of {timeout_s:g}s and was killed",
                    },
                    duration_s=time.monotonic() - started,
                )
            if child.wait(min(remaining, poll_s)):
                try:
                    kind, payload = pickle.loads(child.conn.recv_bytes())
                except (EOFError, OSError):
                    code = self._discard(child, kill=True)
                    return Result(
                        "crash",
                        error={
                            "type": "ProcessCrashed",
                            "message": f"{task.function}'s process died with {_describe_exit(code)}",
                        },
                        duration_s=time.monotonic() - started,
                    )
                self._release(child)
                duration = time.monotonic() - started
                if kind == "ok":
                    data = json.loads(payload)
                    return Result("ok", value=data["result"], artifacts=data["artifacts"], duration_s=duration)
                return Result("error", error=payload, duration_s=duration)
            if cancelled is not None and cancelled():
                self._discard(child, kill=True)
                return Result(
                    "cancelled",
                    error={"type": "Cancelled", "message": "the run was cancelled"},
                    duration_s=time.monotonic() - started,
                )

    def close(self) -> None:
        """Stop every child: idle ones cleanly, busy ones by kill."""
        self._closed = True
        while True:
            try:
                self._retire(self._idle.get_nowait())
            except queue.Empty:
                break
        with self._lock:
            remaining = list(self._all)
        for child in remaining:
            self._discard(child, kill=True)
