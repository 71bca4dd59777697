"""A run's output, captured in the child: ``print``, stderr and ``context.log`` lines, batched to Redis.

Writing a line only appends it to a buffer, so capture costs linear time whatever the size of a write.
A flusher thread sends what is buffered every ``FLUSH_INTERVAL_S`` in one MULTI (one RPUSH of every
line, the LTRIM to the cap, the line count that ``jobs.log_tail`` numbers lines by): a flood of prints
costs a round trip per tenth of a second, not one per line. The end of an attempt flushes the rest.

A per-attempt rate cap (``log_rate`` lines a second after a burst of ``log_burst``) drops the excess,
writes a line saying how many it dropped, and adds them up in ``<run>:logs:dropped``. Lines are cut at
``LOG_LINE_CHARS`` and the newest ``LOG_LINES_CAP`` are kept; secrets are redacted before anything leaves.
"""

from __future__ import annotations

import io
import json
import math
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import redis

#: Log lines kept per run (oldest dropped first) and the longest line kept, in characters.
LOG_LINES_CAP = 5000
LOG_LINE_CHARS = 4096
#: How often buffered lines are sent; a live view is about this much behind.
FLUSH_INTERVAL_S = 0.1
#: Past this many buffered lines the writing thread sends them itself (backpressure for a flood).
FLUSH_LINES = 2000

Entry = tuple[float, str, str, str]  # time, stream, level, line


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
        redact: Callable[[str], str] | None = None,
    ) -> None:
        self._client = client
        self._key = key
        self._attempt = attempt
        self._count_key = count_key
        self._dropped_key = dropped_key
        self._rate = rate if rate is not None and rate > 0 and math.isfinite(rate) else None
        self._burst = max(1, burst)
        self._tokens = float(self._burst)
        self._refilled = time.monotonic()
        self._redact = redact
        self._pending: list[Entry] = []
        self._skipped = 0  # buffered lines dropped by the cap before being sent (they still count)
        self._dropped = 0  # lines dropped by the rate cap and not yet reported
        self.dropped_total = 0
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._closed = False
        if client is not None:
            _flusher().add(self)
            _open.add(self)

    def _refill(self) -> float:
        now = time.monotonic()
        assert self._rate is not None
        self._tokens = min(float(self._burst), self._tokens + (now - self._refilled) * self._rate)
        self._refilled = now
        return self._tokens

    def write(self, line: str, stream: str = "log", level: str = "INFO") -> bool:
        """Buffer one line; False when the rate cap dropped it."""
        if self._client is None or self._closed:
            return False
        with self._lock:
            if self._rate is not None:
                if self._tokens < 1 and self._refill() < 1:
                    self._dropped += 1
                    self.dropped_total += 1
                    return False
                self._tokens -= 1
            if not self._pending:
                _flusher().wake.set()
            self._pending.append((time.time(), stream, level, line[:LOG_LINE_CHARS]))
            backlog = len(self._pending)
            if backlog > 2 * LOG_LINES_CAP:  # the flusher is behind: these would be trimmed anyway
                del self._pending[:LOG_LINES_CAP]
                self._skipped += LOG_LINES_CAP
        if backlog >= FLUSH_LINES:
            self.flush()
        return True

    def flush(self) -> None:
        """Send every buffered line now, in one round trip. Never raises: a log must not fail the run."""
        if self._client is None:
            return
        with self._send_lock:
            with self._lock:
                entries, self._pending = self._pending, []
                skipped, self._skipped = self._skipped, 0
                dropped, self._dropped = self._dropped, 0
            if dropped:
                message = f"[backburner] {dropped} log lines dropped: over the cap of {self._cap()}"
                entries.append((time.time(), "log", "WARNING", message))
            if not entries and not skipped:
                return
            try:
                self._send(entries, skipped, dropped)
            except redis.RedisError:
                with self._lock:  # keep them for the next flush (Redis may be restarting), within the cap
                    self._pending[:0] = entries[-LOG_LINES_CAP:]
                    self._skipped += skipped + max(0, len(entries) - LOG_LINES_CAP)

    def _cap(self) -> str:
        return f"{self._rate:g} lines/s after a burst of {self._burst}"

    def _send(self, entries: list[Entry], skipped: int, dropped: int) -> None:
        assert self._client is not None
        kept = entries[-LOG_LINES_CAP:]
        encoded = [self._encode(entry) for entry in kept]
        # MULTI: readers (jobs.log_tail) see the count and the list change together, so line numbers hold.
        pipe = self._client.pipeline(transaction=True)
        if encoded:
            pipe.rpush(self._key, *encoded)
            pipe.ltrim(self._key, -LOG_LINES_CAP, -1)
        if self._count_key:
            pipe.incrby(self._count_key, len(entries) + skipped)
        if self._dropped_key and dropped:
            pipe.incrby(self._dropped_key, dropped)
        pipe.execute()

    def _encode(self, entry: Entry) -> str:
        t, stream, level, line = entry
        if self._redact is not None:
            line = self._redact(line)
        return (
            f'{{"t":{t!r},"attempt":{self._attempt},"stream":{_quoted(stream)},'
            f'"level":{_quoted(level)},"line":{json.dumps(line)}}}'
        )

    def close(self) -> None:
        """Send what is left and stop taking lines (the end of the attempt)."""
        self.flush()
        self._closed = True
        if self._client is not None:
            _flusher().remove(self)


_QUOTED: dict[str, str] = {}


def _quoted(value: str) -> str:
    found = _QUOTED.get(value)
    if found is None:
        found = _QUOTED[value] = json.dumps(value)
    return found


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


def _after_fork() -> None:
    """In a process the handler forked: the parent sends what it buffered, this one starts afresh."""
    for log in list(_open):
        log._lock, log._send_lock = threading.Lock(), threading.Lock()  # a thread may have held them
        log._pending, log._skipped, log._dropped = [], 0, 0
        if not log._closed:
            _flusher().add(log)


os.register_at_fork(after_in_child=_after_fork)


def _flusher() -> _Flusher:
    """This process's flusher (a forked process gets its own: threads do not survive a fork)."""
    flusher = _state.get("flusher")
    if flusher is None or flusher.pid != os.getpid():
        flusher = _state["flusher"] = _Flusher()
    return flusher


class LogStream(io.TextIOBase):
    """Stands in for ``sys.stdout``/``sys.stderr``: whole lines go to the run's log, and on to the real stream.

    Linear in what is written: a write is split once, and an unfinished line keeps only what the log keeps.
    """

    def __init__(self, log: RunLog, name: str, passthrough: Any, redact: Callable[[str], str] | None = None) -> None:
        self._log = log
        self._name = name
        self._passthrough = passthrough
        self._redact = redact
        self._partial: list[str] = []
        self._partial_chars = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if "\n" not in text:
            self._hold(text)
            return len(text)
        pieces = text.split("\n")
        self._hold(pieces[0])
        self._line("".join(self._partial))
        self._partial, self._partial_chars = [], 0
        for line in pieces[1:-1]:
            self._line(line)
        self._hold(pieces[-1])
        return len(text)

    def _hold(self, piece: str) -> None:
        room = LOG_LINE_CHARS - self._partial_chars
        if piece and room > 0:
            piece = piece[:room]
            self._partial.append(piece)
            self._partial_chars += len(piece)

    def _line(self, line: str) -> None:
        if self._log.write(line, stream=self._name) and self._passthrough is not None:
            try:
                self._passthrough.write((self._redact(line) if self._redact else line) + "\n")
            except (OSError, ValueError):  # the worker's own stream is gone: the run log still has it
                self._passthrough = None

    def flush(self) -> None:
        if self._partial:
            self._line("".join(self._partial))
            self._partial, self._partial_chars = [], 0
        if self._passthrough is not None:
            try:
                self._passthrough.flush()
            except (OSError, ValueError):
                self._passthrough = None
