"""A run's output, captured in the child: ``print``, stderr and ``context.log`` lines, batched to Redis.

Writing only appends to a buffer, so capture costs linear time whatever the size of a write. A flusher
thread sends what is buffered every ``FLUSH_INTERVAL_S`` in one MULTI (one RPUSH of every line, the LTRIM
to the cap, and the line count ``jobs.log_tail`` numbers lines by): a flood of prints costs a round trip
per tenth of a second, not one per line. Only the newest ``LOG_LINES_CAP`` lines of a batch are sent (the
list keeps no more), the rest are counted; the end of an attempt flushes what is left.

A per-attempt rate cap (``log_rate`` lines a second after a burst of ``log_burst``) drops the excess,
writes a line saying how many it dropped, and adds them up in ``<run>:logs:dropped``. Lines are cut at
``LOG_LINE_CHARS``; secrets are redacted before anything leaves the child.
"""

from __future__ import annotations

import io
import math
import os
import threading
import time
import weakref
from collections import deque
from json.encoder import encode_basestring_ascii as _json_string
from typing import Any

import redis

from ..runs import storable
from .secrets import Redactor

#: Log lines kept per run (oldest dropped first) and the longest line kept, in characters.
LOG_LINES_CAP = 5000
LOG_LINE_CHARS = 4096
#: What a line keeps until it is redacted and cut to ``LOG_LINE_CHARS``: a secret that straddles the cut is
#: still found whole, so none of it shows.
_KEPT_CHARS = 2 * LOG_LINE_CHARS
#: How often buffered lines are sent; a live view is about this much behind.
FLUSH_INTERVAL_S = 0.1
#: How long the end of an attempt waits for its last lines to reach Redis before it answers anyway.
CLOSE_WAIT_S = 0.5

#: Lines written together: when, which stream, which level, the lines.
Group = tuple[float, str, str, list[str]]


class RunLog:
    """A run's log lines, buffered and sent to its capped Redis list in batches (thread-safe)."""

    def __init__(
        self,
        client: redis.Redis | None,
        key: str,
        attempt: int,
        count_key: str | None = None,
        dropped_key: str | None = None,
        *,
        rate: float | None = None,
        burst: int = LOG_LINES_CAP,
        redactor: Redactor | None = None,
        echo: dict[str, Any] | None = None,
    ) -> None:
        """``echo`` maps a stream (``stdout``) to a file its lines are also written to, redacted, as they are sent."""
        self._client = client
        self._key = key
        self._attempt = attempt
        self._count_key = count_key
        self._dropped_key = dropped_key
        self._rate = rate if rate is not None and rate > 0 and math.isfinite(rate) else None
        self._burst = max(1, burst)
        self._tokens = float(self._burst)
        self._refilled = time.monotonic()
        self._redactor = redactor
        self._echo = dict(echo or {})
        self._pending: deque[Group] = deque()
        self._count = 0  # lines in _pending
        self._skipped = 0  # lines buffered but never sent (over the cap): they still count
        self._dropped = 0  # lines the rate cap dropped, not yet reported
        self.dropped_total = 0
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._closed = False
        if client is not None:
            _flusher().add(self)
            _open.add(self)

    def write(self, line: str, stream: str = "log", level: str = "INFO") -> bool:
        """Buffer one line; False when the rate cap dropped it."""
        return self.write_lines([line], stream, level) > 0

    def write_lines(self, lines: list[str], stream: str = "log", level: str = "INFO") -> int:
        """Buffer lines written together; return how many of them (from the first) the rate cap kept."""
        if self._closed or not lines:
            return 0
        if self._client is None:  # a synchronous invocation keeps no log: its lines only go on
            if self._echo:
                self._echo_lines(deque([(0.0, stream, level, lines)]))
            return len(lines)
        kept = len(lines)
        with self._lock:
            if self._rate is not None:
                if self._tokens < kept:
                    now = time.monotonic()
                    self._tokens = min(float(self._burst), self._tokens + (now - self._refilled) * self._rate)
                    self._refilled = now
                    if self._tokens < kept:
                        kept = int(self._tokens)
                        self._dropped += len(lines) - kept
                        self.dropped_total += len(lines) - kept
                        lines = lines[:kept]
                self._tokens -= kept
            if kept:
                if not self._pending:
                    _flusher().wake.set()
                self._pending.append((time.time(), stream, level, lines))
                self._count += kept
                if self._count > 2 * LOG_LINES_CAP:  # the flusher is behind: these would be trimmed anyway
                    self._trim(LOG_LINES_CAP)
        return kept

    def _trim(self, keep: int) -> None:
        """Forget the oldest buffered lines beyond ``keep`` (counted as skipped: numbers stay right)."""
        excess = self._count - keep
        while excess > 0:
            t, stream, level, lines = self._pending[0]
            if len(lines) <= excess:
                self._pending.popleft()
                excess -= len(lines)
                self._skipped += len(lines)
            else:
                self._pending[0] = (t, stream, level, lines[excess:])
                self._skipped += excess
                excess = 0
        self._count = min(self._count, keep)

    def flush(self) -> None:
        """Send every buffered line now, in one round trip. Never raises: a log must not fail the run."""
        if self._client is None:
            return
        with self._send_lock:
            with self._lock:
                self._trim(LOG_LINES_CAP)
                groups, self._pending = self._pending, deque()
                count, self._count = self._count, 0
                skipped, self._skipped = self._skipped, 0
                dropped, self._dropped = self._dropped, 0
            if dropped:
                message = f"[backburner] {dropped} log lines dropped: over the cap of {self._cap()}"
                groups.append((time.time(), "log", "WARNING", [message]))
                count += 1
            if not count and not skipped:
                return
            if self._echo:
                self._echo_lines(groups)
            try:
                self._send(groups, count + skipped, dropped)
            except redis.RedisError:
                with self._lock:  # keep them for the next flush (Redis may be restarting), within the cap
                    groups.extend(self._pending)
                    self._pending = groups
                    self._count += count
                    self._skipped += skipped
                    self._dropped += dropped
                    self._trim(LOG_LINES_CAP)

    def _echo_lines(self, groups: deque[Group]) -> None:
        """Write each stream's lines on to its real file, one redacted chunk per stream."""
        chunks: dict[str, list[str]] = {}
        for _, stream, _, lines in groups:
            if stream in self._echo:
                chunks.setdefault(stream, []).extend(lines)
        for stream, lines in chunks.items():
            text = "\n".join(lines)
            if self._redactor is not None:
                text = self._redactor(text)
            if len(text) > LOG_LINE_CHARS:  # cut as the run log cuts them, once redacted
                text = "\n".join(line[:LOG_LINE_CHARS] for line in text.split("\n"))
            try:
                self._echo[stream].write(text + "\n")
                self._echo[stream].flush()
            except (OSError, ValueError):  # the worker's own stream is gone: the run log still has them
                self._echo.pop(stream)

    def _cap(self) -> str:
        return f"{self._rate:g} lines/s after a burst of {self._burst}"

    def _send(self, groups: deque[Group], total: int, dropped: int) -> None:
        assert self._client is not None
        encoded = [entry for group in groups for entry in self._encode(group)]
        # MULTI: readers (jobs.log_tail) see the count and the list change together, so line numbers hold.
        pipe = self._client.pipeline(transaction=True)
        if encoded:
            pipe.rpush(self._key, *encoded)
            pipe.ltrim(self._key, -LOG_LINES_CAP, -1)
        if self._count_key:
            pipe.incrby(self._count_key, total)
        if self._dropped_key and dropped:
            pipe.incrby(self._dropped_key, dropped)
        pipe.execute()

    def _encode(self, group: Group) -> list[str]:
        t, stream, level, lines = group
        if self._redactor is not None and self._redactor.finds("\n".join(lines)):
            lines = [self._redactor(line) for line in lines]
        return entries(t, self._attempt, stream, level, lines)

    def close(self, wait_s: float | None = None) -> None:
        """Send what is left and stop taking lines (the end of the attempt).

        With ``wait_s``, wait at most that long for the send: the attempt's answer waits for it, and a Redis that
        hangs must not hold that answer past the time limit. The lines still go if Redis answers within the
        client's socket timeout.
        """
        if wait_s is None:
            self.flush()
        else:
            deadline = time.monotonic() + wait_s
            idle = self._send_lock.acquire(timeout=wait_s)  # not idle: the flusher's own send is stuck
            if idle:
                self._send_lock.release()
            if not idle or self._count or self._skipped or self._dropped:
                # Sent from a thread of its own, which may outlive the wait: the lines go once Redis answers.
                sender = threading.Thread(target=self.flush, name="backburner-log-close", daemon=True)
                sender.start()
                sender.join(max(0.0, deadline - time.monotonic()))
        self._closed = True
        if self._client is not None:
            _flusher().remove(self)


def entries(t: float, attempt: int, stream: str, level: str, lines: list[str]) -> list[str]:
    """Lines as a run's log list keeps them: one JSON object each, cut at ``LOG_LINE_CHARS``."""
    where = f'"stream":{_json_string(stream)},"level":{_json_string(level)}'
    head = f'{{"t":{t!r},"attempt":{attempt},{where},"line":'
    return [f"{head}{_json_string(storable(line[:LOG_LINE_CHARS]))}}}" for line in lines]


class _Flusher:
    """One thread per process that sends every open RunLog's buffered lines, ``FLUSH_INTERVAL_S`` apart."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.logs: set[RunLog] = set()
        self.wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, log: RunLog) -> None:
        with self._lock:
            self.logs.add(log)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="backburner-log-flusher", daemon=True)
                self._thread.start()

    def remove(self, log: RunLog) -> None:
        with self._lock:
            self.logs.discard(log)

    def _loop(self) -> None:
        while True:
            self.wake.wait()
            self.wake.clear()
            time.sleep(FLUSH_INTERVAL_S)  # gather a batch
            with self._lock:
                logs = list(self.logs)
            for log in logs:
                log.flush()


_state: dict[str, _Flusher] = {}
_open: weakref.WeakSet[RunLog] = weakref.WeakSet()


def _flusher() -> _Flusher:
    """This process's flusher (a forked process gets its own: threads do not survive a fork)."""
    flusher = _state.get("flusher")
    if flusher is None or flusher.pid != os.getpid():
        flusher = _state["flusher"] = _Flusher()
    return flusher


def _after_fork() -> None:
    """In a process the handler forked: the parent sends what it buffered, this one starts afresh."""
    for log in list(_open):
        log._lock, log._send_lock = threading.Lock(), threading.Lock()  # a thread may have held them
        log._pending, log._count, log._skipped, log._dropped = deque(), 0, 0, 0
        if not log._closed:
            _flusher().add(log)


os.register_at_fork(after_in_child=_after_fork)


class LogStream(io.TextIOBase):
    """Stands in for ``sys.stdout``/``sys.stderr``: whole lines go to the run's log (which may echo them on).

    Linear in what is written: a write is split once, and an unfinished line keeps only what the log keeps.
    """

    def __init__(self, log: RunLog, name: str) -> None:
        self._log = log
        self._name = name
        self._partial = ""

    def start(self, log: RunLog) -> None:
        """Write to ``log`` from now on, from the start of a line (a stream kept for attempt after attempt)."""
        self._log = log
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if text == "\n":  # the second half of every print()
            lines = [self._partial]
            self._partial = ""
        elif "\n" not in text:
            if len(self._partial) < _KEPT_CHARS:
                self._partial += text[: _KEPT_CHARS - len(self._partial)]
            return len(text)
        else:
            lines = text.split("\n")
            if len(text) > _KEPT_CHARS:  # a long line is kept cut, not whole, until it is sent
                lines = [line[:_KEPT_CHARS] for line in lines]
            lines[0] = (self._partial + lines[0])[:_KEPT_CHARS]
            self._partial = lines.pop()
        self._log.write_lines(lines, self._name)
        return len(text)

    def flush(self) -> None:
        if self._partial:
            self._log.write_lines([self._partial], self._name)
            self._partial = ""
