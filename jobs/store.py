"""Run records in Redis: created atomically with their message, changed by compare-and-set."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import redis

from .broker import RunBroker
from .errors import RunNotFound, StoreUnavailable
from .keys import Keys
from .runs import ACTIVE, Progress, Run

T = TypeVar("T")


@contextmanager
def translate_errors(action: str) -> Iterator[None]:
    """Turn a Redis failure into StoreUnavailable, which the API answers with 503."""
    try:
        yield
    except redis.WatchError:
        raise
    except redis.RedisError as exc:
        raise StoreUnavailable(f"Redis is unavailable ({action}): {exc}") from exc


class SkipWrite(Exception):
    """Raised by a mutation to leave the run unchanged (for example, a stale message)."""


class RunStore:
    """Reads and writes runs. Every write of a run goes through ``update`` (WATCH/MULTI/EXEC)."""

    def __init__(self, client: redis.Redis, broker: RunBroker, keys: Keys, *, idempotency_ttl: float = 86400) -> None:
        self.client = client
        self.broker = broker
        self.keys = keys
        self.idempotency_ttl = int(idempotency_ttl)

    # -- creation ------------------------------------------------------------------------------

    def create(self, run: Run, event: dict[str, Any], *, idempotency_key: str | None = None) -> tuple[Run, bool]:
        """Store the run, its event and its message in one transaction.

        Returns ``(run, True)``, or ``(existing run, False)`` when the idempotency key was used
        within its window. Raises StoreUnavailable if Redis cannot take it.
        """
        with translate_errors("creating a run"), self.client.pipeline() as pipe:
            if idempotency_key is None:
                pipe.multi()
                self._write_new(pipe, run, event)
                pipe.execute()
                return run, True
            idem = self.keys.idempotency(run.function, idempotency_key)
            while True:
                try:
                    pipe.watch(idem)
                    existing = pipe.get(idem)
                    if existing is not None:
                        pipe.reset()
                        return self.get(_text(existing)), False
                    pipe.multi()
                    pipe.set(idem, run.id, ex=self.idempotency_ttl)
                    self._write_new(pipe, run, event)
                    pipe.execute()
                    return run, True
                except redis.WatchError:
                    continue

    def _write_new(self, pipe: Any, run: Run, event: dict[str, Any]) -> None:
        pipe.set(self.keys.event(run.id), json.dumps(event))
        pipe.zadd(self.keys.runs, {run.id: 0})
        pipe.zadd(self.keys.function_runs(run.function), {run.id: 0})
        pipe.zadd(self.keys.active, {run.id: 0})
        run.message_id = self.broker.enqueue_in(pipe, run.id, run.token)
        pipe.set(self.keys.run(run.id), run.model_dump_json())

    # -- reading -------------------------------------------------------------------------------

    def get(self, run_id: str) -> Run:
        with translate_errors("reading a run"):
            pipe = self.client.pipeline(transaction=False)
            pipe.get(self.keys.run(run_id))
            pipe.hgetall(self.keys.progress(run_id))
            raw, progress = pipe.execute()
        if raw is None:
            raise RunNotFound(run_id)
        run = Run.model_validate_json(raw)
        if progress:
            run.progress = _progress(progress)
        return run

    def event(self, run_id: str) -> dict[str, Any]:
        with translate_errors("reading a run's event"):
            raw = self.client.get(self.keys.event(run_id))
        if raw is None:
            raise RunNotFound(run_id)
        data: dict[str, Any] = json.loads(raw)
        return data

    def runs(
        self,
        *,
        function: str | None = None,
        status: str | None = None,
        trigger: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[Run], str | None]:
        """Runs newest first. ``cursor`` is the last id of the previous page."""
        index = self.keys.function_runs(function) if function else self.keys.runs
        upper = f"({cursor}" if cursor else "+"
        found: list[Run] = []
        batch = max(limit * 2, 50)
        with translate_errors("listing runs"):
            while len(found) < limit:
                ids = [_text(i) for i in self.client.zrevrangebylex(index, upper, "-", start=0, num=batch)]
                if not ids:
                    return found, None
                raws = self.client.mget([self.keys.run(i) for i in ids])
                for _run_id, raw in zip(ids, raws, strict=True):
                    if raw is None:
                        continue
                    run = Run.model_validate_json(raw)
                    if (status and run.status != status) or (trigger and run.trigger != trigger):
                        continue
                    found.append(run)
                    if len(found) == limit:
                        return found, run.id
                upper = f"({ids[-1]}"
        return found, found[-1].id if found else None

    def active_ids(self) -> list[str]:
        with translate_errors("listing active runs"):
            return [_text(i) for i in self.client.zrange(self.keys.active, 0, -1)]

    # -- changing ------------------------------------------------------------------------------

    def update(self, run_id: str, mutate: Callable[[Run, Any], T]) -> T:
        """Apply ``mutate(run, pipe)`` and write the run back atomically, retrying on a race.

        ``mutate`` changes the run in place and may queue more commands on ``pipe`` (already in
        MULTI), such as the next message; they commit together with the run. It raises SkipWrite
        to leave everything unchanged.
        """
        key = self.keys.run(run_id)
        with translate_errors("updating a run"), self.client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    if raw is None:
                        raise RunNotFound(run_id)
                    run = Run.model_validate_json(raw)
                    pipe.multi()
                    result = mutate(run, pipe)
                    pipe.set(key, run.model_dump_json())
                    if run.status in ACTIVE:
                        pipe.zadd(self.keys.active, {run.id: 0})
                    else:
                        pipe.zrem(self.keys.active, run.id)
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue

    def request_cancel(self, run_id: str) -> None:
        with translate_errors("cancelling a run"):
            self.client.set(self.keys.cancel(run_id), 1, ex=7 * 86400)

    def cancel_requested(self, run_id: str) -> bool:
        return bool(self.client.exists(self.keys.cancel(run_id)))

    def logs(self, run_id: str, start: int = 0) -> list[dict[str, Any]]:
        with translate_errors("reading logs"):
            return [json.loads(line) for line in self.client.lrange(self.keys.logs(run_id), start, -1)]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _progress(fields: dict[bytes, bytes]) -> Progress:
    def value(name: str) -> Any:
        raw = fields.get(name.encode())
        return None if raw is None else json.loads(raw)

    return Progress(done=value("done"), total=value("total"), message=value("message"))
