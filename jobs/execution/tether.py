"""A child's tether to its worker: an attempt pauses itself when its worker has gone silent.

A worker pauses its running attempts when its heartbeats stop landing (``ChildPool.run``'s ``held``), short of
the time after which other workers give it up for lost and resume its runs. A worker process stopped on its
own (``SIGSTOP``, a debugger; a frozen machine freezes its children with it) cannot, but its children still
can. So the worker writes when its last landed heartbeat was sent into memory it shares with its children
(``Tether``), and a child running an attempt pauses itself and everything it started once that is
``fence_s`` old, and flags that it did (``Guard``). Woken, the worker finds the flag and holds the pause as
its own: the attempt goes on only once Redis says it is still the run's current one, else it is stopped.

Both sides read one clock, ``time.monotonic()``, which on Linux is the same for every process of a host.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from typing import Any

from . import proctree

#: The longest a child's guard sleeps between looks at its worker's clock while all is well.
_LOOK_S = 1.0
#: How often it looks while the clock is stale but no attempt runs (its worker stopped while it was idle).
_IDLE_LOOK_S = 0.25


@dataclass(frozen=True)
class Line:
    """What one child shares with its worker: the worker's clock (when its last landed heartbeat was sent, 0
    for none yet; and how old that may get, 0 for no limit) and the child's own flag (``paused_itself``)."""

    clock: Any  # a RawArray of two c_double
    flag: Any  # a RawValue c_double

    def paused_itself(self) -> float:
        """How long no heartbeat had landed when the child paused itself; 0 if it has not, or is awake again
        (the child clears it). Set just before the child stops: it may still be running for a moment."""
        return float(self.flag.value)

    def clear(self) -> None:
        self.flag.value = 0.0


class Tether:
    """The worker's side: one clock for every child of a pool (``fence_s`` None: children never pause)."""

    def __init__(self, ctx: BaseContext, fence_s: float | None) -> None:
        self._ctx = ctx
        self._clock: Any = ctx.RawArray(ctypes.c_double, 2)
        self._clock[1] = fence_s or 0.0

    def landed(self, sent_at: float) -> None:
        """A heartbeat sent at ``sent_at`` (monotonic) landed: the children may run on until ``fence_s`` after."""
        self._clock[0] = sent_at

    def line(self) -> Line:
        """A new child's line, passed to it when it starts."""
        return Line(self._clock, self._ctx.RawValue(ctypes.c_double, 0.0))


class Guard:
    """The child's side: a thread that pauses this child, and everything it started, while an attempt runs
    and the worker's clock is ``fence_s`` old."""

    def __init__(self, line: Line) -> None:
        self.line = line
        self._lock = threading.Lock()  # held across the pause: an attempt cannot end (and answer) during one
        self._running = False

    def start(self) -> Guard:
        if self.line.clock[1]:  # else its pool never pauses (synchronous invocations have no heartbeats)
            threading.Thread(target=self._watch, name="backburner-tether", daemon=True).start()
        return self

    @contextlib.contextmanager
    def attempt(self) -> Iterator[None]:
        """While an attempt runs (its answer is sent after this ends: a child that paused did so before it)."""
        with self._lock:
            self._running = True
        try:
            yield
        finally:
            with self._lock:
                self._running = False

    def _watch(self) -> None:
        clock = self.line.clock
        while True:
            landed = clock[0]
            if not landed:  # no heartbeat yet
                time.sleep(_LOOK_S)
                continue
            wait = landed + clock[1] - time.monotonic()
            if wait > 0:
                time.sleep(min(wait, _LOOK_S))
                continue
            with self._lock:
                if self._running and clock[0] == landed:
                    self._pause(time.monotonic() - landed)
                    continue
            time.sleep(_IDLE_LOOK_S)

    def _pause(self, silent_s: float) -> None:
        """Stop everything this child started, then this child, until someone (its worker) sends SIGCONT."""
        self.line.flag.value = silent_s
        proctree.stop_tree(os.getpid(), include_root=False)
        # Sent to this very thread, the stop takes it before the call returns (sent to the process, it takes
        # whichever thread the kernel picks, and this one could run on meanwhile, even past a SIGCONT).
        signal.pthread_kill(threading.get_ident(), signal.SIGSTOP)
        self.line.clear()  # woken
