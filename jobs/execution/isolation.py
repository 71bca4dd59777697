"""Each attempt runs in a warm child process that is killed at its limit, whatever it is doing.

Children come from a fork server (a small clean process that preloads this module and
``jobs.execution.child``), so they never inherit the worker's threads or Redis connections, and starting one
costs a fork, not an interpreter start-up. A child serves many attempts, one at a time, like a warm
Lambda container; it is replaced after a timeout, a crash, a cancel, or ``max_runs`` attempts.

Everything an attempt starts dies with it: a child is killed with its whole process tree (its handler's
subprocesses, and theirs, however they detached: ``jobs.execution.proctree``), and what a crashing child
leaves behind is adopted by the fork server and killed as a stray. Memory is held to the function's
``memory_limit`` by the worker's containment (``jobs.execution.containment``). The fork server starts
with an environment free of Backburner's own secrets, so no attempt can read them even from ``/proc``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import pickle
import queue
import select
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing import forkserver
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from ..runs import Result, ResultKind
from . import proctree
from .child import child_main, size_text, sizes_over
from .containment import WATCH_INTERVAL_S, Watchdog
from .secrets import scrub_environ
from .task import Task
from .tether import Line, Tether

log = logging.getLogger("backburner.worker")

#: Bytes a result message may carry beyond ``max_result`` (the list of artifacts written).
_ENVELOPE_BYTES = 1 << 20
#: Pids of the live children of every pool in this process (they share one fork server), and its guard.
_live: set[int] = set()
_spawning = threading.Lock()


@dataclass(eq=False)
class _Child:
    process: BaseProcess
    conn: Connection
    #: Shared with the child: its worker's clock, and its flag for having paused itself (``jobs.execution.tether``).
    line: Line
    runs: int = 0
    #: Watches ``conn``: readable when the child answers, hung up when it dies. One per child, because
    #: ``Connection.poll`` builds a selector on every call and the worker polls once per attempt.
    poller: select.poll = field(init=False)

    def __post_init__(self) -> None:
        self.poller = select.poll()
        self.poller.register(self.conn.fileno(), select.POLLIN)

    @property
    def pid(self) -> int:
        return int(self.process.pid or 0)

    def wait(self, timeout_s: float) -> bool:
        return bool(self.poller.poll(timeout_s * 1000))


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def _server_pid() -> int | None:
    server: Any = forkserver._forkserver
    pid: int | None = server._forkserver_pid
    return pid


def _ensure_server() -> None:
    """Start the fork server, if it is not running, from an environment without Backburner's secrets.

    Children are forked from it, so what it was started with is what ``/proc/self/environ`` shows them.
    """
    pid = _server_pid()
    if pid is not None:
        with contextlib.suppress(ChildProcessError):
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
                return  # running
    removed = scrub_environ()
    try:
        forkserver.ensure_running()
    finally:
        os.environ.update(removed)


def kill_strays() -> list[int]:
    """Kill what dead children left behind: processes re-parented to the fork server that are no child of ours."""
    server = _server_pid()
    if server is None:
        return []
    with _spawning:
        strays = [pid for pid in proctree.children(server) if pid not in _live]
        for pid in strays:
            proctree.kill_tree(pid)
    return strays


def _parse(payload: str) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(payload, parse_constant=refuse)


class ChildPool:
    """A pool of warm child processes; ``run`` is thread-safe and blocks for one attempt."""

    def __init__(
        self,
        size: int,
        *,
        max_runs: int = 1000,
        preload: Sequence[str] = (),
        containment: Watchdog | None = None,
        fence_s: float | None = None,
    ) -> None:
        """``fence_s``: a child running an attempt pauses itself once ``tether.landed`` was last told of a heartbeat
        sent that long ago (``jobs.execution.tether``); None: never."""
        self.size = max(1, size)
        self.max_runs = max_runs
        self.containment = containment or Watchdog()
        self._ctx = multiprocessing.get_context("forkserver")
        self.tether = Tether(self._ctx, fence_s)
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
        line = self.tether.line()
        process = self._ctx.Process(target=child_main, args=(child_end, line), daemon=True, name="backburner-child")
        with _spawning:
            _ensure_server()
            process.start()
            _live.add(int(process.pid or 0))
        child_end.close()
        child = _Child(process, parent_end, line)
        try:
            self.containment.adopt(child.pid)
        except OSError:
            self._discard(child, kill=True)
            raise
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
        if kill:
            self.containment.kill(child.pid)  # the child and everything below it
        child.process.join(timeout=5)
        child.conn.close()
        with self._lock:
            self._all.discard(child)
        with _spawning:
            _live.discard(child.pid)
        self.containment.release(child.pid)
        if kill:
            kill_strays()  # what the child left behind if it died before it could be killed with its tree
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
        cancelled: Callable[[], bool | None] | None = None,
        held: Callable[[], bool] | None = None,
        poll_s: float = 0.25,
        memory_limit: int | None = None,
    ) -> Result:
        """Run ``task`` in a child; kill it at ``timeout_s``, past ``memory_limit`` bytes, or when ``cancelled()``.

        While ``held()`` is true (its worker has lost touch with Redis) the child and everything it started are
        paused, and ``cancelled`` is not asked; they go on once ``held()`` is false and ``cancelled()`` answers a
        definite False (None: it could not tell). The time limit counts the pause.
        """
        started = time.monotonic()
        deadline = started + timeout_s
        child = self._acquire()
        data = pickle.dumps(task, pickle.HIGHEST_PROTOCOL)  # plain pickle: multiprocessing's costs more per call
        try:
            self.containment.prepare(child.pid, memory_limit)
            child.conn.send_bytes(data)
        except OSError:
            self._discard(child, kill=True)
            child = self._spawn()
            self.containment.prepare(child.pid, memory_limit)
            child.conn.send_bytes(data)
        watch = memory_limit is not None and not self.containment.enforced
        step = min(poll_s, WATCH_INTERVAL_S) if watch else poll_s
        next_cancel_check, peak = started + poll_s, 0
        paused: list[int] | None = None  # the pids held while the worker cannot reach Redis

        def failed(kind: ResultKind, **error: Any) -> Result:
            oom = self.containment.oom_peak(child.pid) if kind == "crash" else None  # read before the cgroup goes
            code = self._discard(child, kill=True)
            if oom is not None and memory_limit is not None:
                return failed_memory(max(oom, peak))
            if kind == "crash":
                error = {
                    "type": "ProcessCrashed",
                    "message": f"{task.function}'s process died with {_describe_exit(code)}",
                }
            return Result(kind, error=error, duration_s=time.monotonic() - started)

        def failed_memory(used: int) -> Result:
            assert memory_limit is not None
            size, limit = sizes_over(used, memory_limit)
            message = f"{task.function} used {size} of memory, over its memory_limit of {limit}, and was killed"
            error = {"type": "MemoryLimitExceeded", "message": message, "limit_bytes": memory_limit, "peak_bytes": used}
            return Result("crash", error=error, duration_s=time.monotonic() - started)

        while True:
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                message = f"{task.function} exceeded its time limit of {timeout_s:g}s and was killed"
                return failed("timeout", type="TimeLimitExceeded", message=message)
            if child.wait(min(remaining, step)):
                try:
                    kind, payload = pickle.loads(child.conn.recv_bytes())
                except (EOFError, OSError):
                    return failed("crash")
                if paused is not None:  # it answered before the pause: the answer stands, the child serves on
                    proctree.continue_tree(paused)
                self._release(child)
                duration = time.monotonic() - started
                if kind == "cancelled":  # the handler saw context.cancelled and ended: the run is cancelled
                    answer = self._ok(task, payload, duration)
                    error = {"type": "Cancelled", "message": "the run was cancelled; its handler stopped early"}
                    return Result("cancelled", value=answer.value, error=error, duration_s=duration)
                if kind != "ok":
                    return Result("error", error=payload, duration_s=duration)
                return self._ok(task, payload, duration)
            if watch:
                used = self.containment.usage(child.pid)
                peak = max(peak, used)
                if memory_limit is not None and used > memory_limit:
                    self._discard(child, kill=True)
                    return failed_memory(peak)
            silent = child.line.paused_itself() if paused is None else 0.0  # this worker was stopped, or Redis away
            if silent and proctree.stopped(child.pid):  # stopped already: a SIGCONT now could not come before it
                paused = proctree.stop_tree(child.pid)  # held as this worker's own pause from here on
                next_cancel_check = now
                log.warning(
                    "run %s attempt %d: paused itself, no heartbeat of its worker having landed for %.1fs, so that"
                    " it never runs beside an attempt resumed elsewhere",
                    task.context.run_id,
                    task.context.attempt,
                    silent,
                )
            if (cancelled is not None or held is not None) and now >= next_cancel_check:
                next_cancel_check = now + poll_s
                if held is not None and held():
                    if paused is None:
                        paused = proctree.stop_tree(child.pid)
                        log.warning(
                            "run %s attempt %d: paused while its worker cannot reach Redis, so that it never runs"
                            " beside an attempt resumed elsewhere",
                            task.context.run_id,
                            task.context.attempt,
                        )
                    continue
                stop = cancelled() if cancelled is not None else False
                if stop:
                    return failed("cancelled", type="Cancelled", message="the run was cancelled")
                if paused is not None and stop is False:
                    proctree.continue_tree(paused)
                    paused = None
                    log.warning(
                        "run %s attempt %d: going on, its worker reaches Redis again",
                        task.context.run_id,
                        task.context.attempt,
                    )

    def _ok(self, task: Task, payload: str, duration: float) -> Result:
        """The child's answer, checked again here: the child runs the user's code, which could have sent anything."""
        limit = task.context.max_result
        try:
            if limit is not None and len(payload) > limit + _ENVELOPE_BYTES:
                raise ValueError(f"its result is over its max_result of {size_text(limit)}")
            data = _parse(payload)
        except ValueError as exc:
            error = {"type": "InvalidResult", "message": f"{task.function}: {exc}", "retry": False}
            return Result("error", error=error, duration_s=duration)
        return Result("ok", value=data["result"], artifacts=data["artifacts"], duration_s=duration)

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
