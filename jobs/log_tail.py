"""Reading a run's log from a line number on, for live views (SSE, ``logs --follow``, the dashboard).

The log is a capped Redis list (``jobs.execution.context.LOG_LINES_CAP``), so list positions shift once the oldest
lines are dropped. Lines are therefore numbered by ``<run>:logs:n``, the count of lines ever written, which
the writer bumps in the same MULTI as its RPUSH/LTRIM: line ``k`` (0-based) is list item
``k - (count - length)``. One script call returns the new lines, the count and whether the run is still
active, so a follower costs one round trip per poll and reads only what it has not seen.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import redis

from .keys import Keys
from .scripts import LOG_READ_SCRIPT
from .store import translate_errors

#: Lines returned by one read at most; a follower that is further behind reads again at once.
READ_BATCH = 500


@dataclass
class Chunk:
    """What one read found: ``lines`` as ``(number, entry)`` pairs, oldest first."""

    total: int
    first: int
    active: bool
    lines: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    #: The number of the first line after this chunk (where the next read starts).
    next: int = 0
    #: Lines the caller wanted that the cap already dropped (0 normally).
    dropped: int = 0
    #: With ``state=True``: a fingerprint of the run record and the progress hash, to notice changes cheaply.
    state: tuple[Any, ...] | None = None

    @property
    def caught_up(self) -> bool:
        return self.next >= self.total


class LogTail:
    """Reads new log lines (and optionally the run's state) of one run at a time."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._read = client.register_script(LOG_READ_SCRIPT)

    def read(self, run_id: str, start: int = 0, *, state: bool = False, limit: int = READ_BATCH) -> Chunk:
        """Lines numbered ``start`` and up (at most ``limit``), the count so far, and whether the run is active."""
        k = self.keys
        keys = [k.logs(run_id), k.log_count(run_id), k.active, k.run(run_id), k.progress(run_id)]
        with translate_errors("reading logs"):
            total, first, active, raw_lines, record, progress = self._read(
                keys=keys, args=[max(start, 0), limit, run_id, "1" if state else "0"]
            )
        total, first, start = int(total), int(first), max(start, 0)
        begin = max(start, first)
        lines = [(begin + i, json.loads(raw)) for i, raw in enumerate(raw_lines)]
        chunk = Chunk(total=total, first=first, active=bool(active), lines=lines)
        chunk.next = lines[-1][0] + 1 if lines else begin
        chunk.dropped = min(first, total) - start if start < first else 0
        if state:
            chunk.state = (record, tuple(progress))
        return chunk
