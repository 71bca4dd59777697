"""A Server-Sent Events reader for the client and the CLI: ``text/event-stream`` lines in, events out.

``Parser`` is fed one line at a time, so the same code reads a sync or an asyncio httpx stream.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    event: str
    data: str
    id: str | None = None

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class Parser:
    """Per the HTML spec: ``field: value`` lines, a blank line ends an event, ``:`` starts a comment."""

    kind: str = "message"
    event_id: str | None = None
    data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> Event | None:
        """The event that ``line`` completes, if it completes one."""
        if not line:
            event = Event(self.kind, "\n".join(self.data), self.event_id) if self.data else None
            self.kind, self.data, self.event_id = "message", [], None
            return event
        if line.startswith(":"):
            return None  # a comment (keep-alive)
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self.kind = value
        elif name == "data":
            self.data.append(value)
        elif name == "id":
            self.event_id = value
        return None

    def close(self) -> Event | None:
        """An event the stream ended in the middle of (no blank line after it)."""
        return self.feed("")


def parse(lines: Iterable[str]) -> Iterator[Event]:
    """Events from the stream's lines."""
    parser = Parser()
    for line in lines:
        event = parser.feed(line)
        if event is not None:
            yield event
    last = parser.close()
    if last is not None:
        yield last
