"""``Writes``: what a mutation or a hook gets as ``pipe``, the writes that commit atomically with a run's change
(``jobs.store.RunStore.update`` runs them inside its compare-and-set script); ``Fence``: a condition a write
lands under."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic_core import PydanticSerializationError, to_json
from redis.commands import CoreCommands


@dataclass(frozen=True)
class Fence:
    """A write that lands only while ``holder`` is the value of key ``lease`` (the scheduler's leader lease): one
    sent before a partition and delivered after another scheduler took over is dropped, never applied late.
    With ``within`` (a hash and a field), only while the field is there too (a schedule not deleted meanwhile),
    and with ``revision``, only while the field's value is ``revision`` (not deleted and created anew)."""

    lease: str = ""
    holder: str = ""
    within: tuple[str, str] | None = None
    revision: str = ""


class Writes(CoreCommands):
    """The writes that commit atomically with a run's change: what a mutation or a hook gets as ``pipe``.

    Commands are queued through redis-py's own command methods (``pipe.hset(...)``, ``pipe.zadd(...)``) and
    run inside CAS_SCRIPT together with the new record, so they land exactly when the change does. Beyond
    plain commands: ``only_while`` (commands that land only while a hash field holds a value), ``take_slot``
    (a concurrency slot that must be free for the write to happen), ``wake`` (give the next waiting run a
    message afterwards), ``fetched`` (the values of ``update``'s ``fetch`` keys, read in the same step) and
    ``dispatches`` (the run's next messages, queued by ``RunStore.dispatch``).
    """

    _event_dispatcher: Any = None  # declared abstract by redis-py's typing; never used here
    _is_async_client: Literal[False] = False  # redis-py's typing tells sync command methods by this marker

    def __init__(self) -> None:
        self.commands: list[tuple[Any, ...]] = []
        self.dispatches: list[tuple[str, float | None]] = []
        self.fetched: list[Any] = []
        self.guard: tuple[str, int, str] = ("", 0, "")
        self.waiting = ""

    def take_slot(self, key: str, limit: int, member: str) -> None:
        """Write only if ``member`` holds, or can take, one of ``limit`` slots in sorted set ``key``."""
        self.guard = (key, limit, member)
        self.execute_command("ZADD", key, 0, member)

    def wake(self, waiting: str) -> None:
        """After the write, give the first run in list ``waiting`` that still waits a message."""
        self.waiting = waiting

    @contextlib.contextmanager
    def only_while(self, key: str, field: str, value: str) -> Iterator[None]:
        """The commands queued inside apply only if hash ``key``'s ``field`` is ``value`` when the write lands
        (a claim still held): checked in the same atomic step, where a read beforehand could be stale."""
        at = len(self.commands)
        self.commands.append(("@IF", key, field, value, 0))
        yield
        self.commands[at] = ("@IF", key, field, value, len(self.commands) - at - 1)

    def execute_command(self, *args: Any, **options: Any) -> Writes:
        self.commands.append(args)
        return self

    def plan(self, values: list[Any]) -> list[Any]:
        """CAS_SCRIPT's arguments after the two records: ``values`` and the commands as one JSON plan (packing
        one argument costs redis-py far less than packing dozens), or the same one argument each when a word
        is bytes that JSON cannot carry (not UTF-8)."""
        try:
            commands = [[w if type(w) is str else _word(w) for w in command] for command in self.commands]
            plan = [*map(_word, values), commands]
        except UnicodeDecodeError:
            legacy: list[Any] = ["", *values, len(self.commands)]
            for command in self.commands:
                legacy += [len(command), *command]
            return legacy
        try:
            return [to_json(plan)]  # the bytes json.dumps(ensure_ascii=False) gives, at a fifth of its cost
        except PydanticSerializationError:  # a lone surrogate: json.dumps lets it through, and redis-py says why
            return [json.dumps(plan, ensure_ascii=False, separators=(",", ":"))]


def _word(value: Any) -> str:
    """A command word as text, as redis-py would send it (raises UnicodeDecodeError for bytes that are not UTF-8)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, float):
        return repr(value)
    return str(value)
