"""Run records in Redis: created atomically with their message, changed by compare-and-set."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
import redis.asyncio

from . import clock
from .broker import RunBroker, new_message_id
from .errors import BackburnerError, IdempotencyConflict, NotLeader, RunNotFound, ScheduleNotFound, StoreUnavailable
from .keys import Keys, text
from .runs import ACTIVE, TICK_TRIGGERS, Idempotency, Progress, Run, parse_run, readable
from .scripts import CAS_MANY_SCRIPT, CAS_SCRIPT, CREATE_SCRIPT
from .writes import Fence, Writes

T = TypeVar("T")
#: At most this many compare-and-sets in one script call, so a big batch (a backfill's promotions) does not hold
#: Redis for long in one go.
WRITES_PER_CALL = 32


@contextmanager
def translate_errors(action: str) -> Iterator[None]:
    """Turn a Redis failure into StoreUnavailable, which the API answers with 503."""
    try:
        yield
    except redis.WatchError:
        raise
    except redis.RedisError as exc:
        raise StoreUnavailable(f"Redis is unavailable ({action}): {exc}") from exc


@dataclass(eq=False)
class _Write:
    """One prepared compare-and-set of a run record (see ``RunStore.update``)."""

    run_id: str
    mutate: Callable[[Run, Writes], Any]
    run: Run
    new: str
    pipe: Any
    result: Any
    keys: list[Any]
    args: list[Any]

    def settle(self, reply: Any) -> tuple[bool, Any]:
        """``(True, None)`` once written; ``(False, current record)`` when the record had changed."""
        written, *values = reply
        if written == 2:
            raise NoSlot(self.run.function)
        if not written:
            return False, values[0]
        self.run.stored = self.new
        self.pipe.fetched = values
        return True, None


class SkipWrite(Exception):
    """Raised by a mutation to leave the run unchanged (for example, a stale message)."""


class NoSlot(Exception):
    """Raised by ``update`` when the mutation needed a concurrency slot and all were taken."""


class RunStore:
    """Reads and writes runs. Every change of a run goes through ``update`` (one compare-and-set script)."""

    def __init__(self, client: redis.Redis, broker: RunBroker, keys: Keys, *, idempotency_ttl: float = 86400) -> None:
        self.client = client
        self.broker = broker
        self.keys = keys
        self.idempotency_ttl = int(idempotency_ttl)
        self._create = client.register_script(CREATE_SCRIPT)
        self._compare_and_set = client.register_script(CAS_SCRIPT)
        self._compare_and_set_all = client.register_script(CAS_MANY_SCRIPT)

    # -- creation ------------------------------------------------------------------------------

    def create(
        self, run: Run, event: dict[str, Any], *, idempotency: Idempotency | None = None, fence: Fence | None = None
    ) -> tuple[Run, bool]:
        """Store the run, its event and its message in one atomic step (one script call).

        Returns ``(run, True)``, or ``(existing run, False)`` when the idempotency key was used within its window
        for the same request. Raises IdempotencyConflict when it was used for a different request (another
        fingerprint), NotLeader or ScheduleNotFound when ``fence`` fails, StoreUnavailable if Redis is away.
        """
        keys, args = self._create_call(run, event, idempotency)
        if fence is not None:
            keys += [fence.lease, fence.within[0] if fence.within else ""]
            args += [fence.holder, fence.within[1] if fence.within else "", fence.revision]
        with translate_errors("creating a run"):
            reply = text(self._create(keys=keys, args=args))
            if reply == "":
                raise NotLeader(f"run for {run.schedule or run.function} not created: this scheduler lost the lead")
            if reply == "-":
                raise ScheduleNotFound(run.schedule or "")
            created = self._existing(reply, run, idempotency)
        if created is not None:
            return self.get(created), False
        return run, True

    def use_async(self, client: redis.asyncio.Redis) -> None:
        """Give the store an asyncio client (made on the API's event loop) for ``create_async``."""
        self._acreate = client.register_script(CREATE_SCRIPT)

    async def create_async(
        self, run: Run, event: dict[str, Any], *, idempotency: Idempotency | None = None
    ) -> tuple[Run, bool]:
        """``create`` on the asyncio client, for the API's hot path: no thread-pool hop per request."""
        keys, args = self._create_call(run, event, idempotency)
        with translate_errors("creating a run"):
            created = self._existing(text(await self._acreate(keys=keys, args=args)), run, idempotency)
        if created is not None:
            return await asyncio.to_thread(self.get, created), False
        return run, True

    def _existing(self, reply: str, run: Run, idempotency: Idempotency | None) -> str | None:
        """None when ``run`` was created; else the id of the run the key already made (same request)."""
        if reply == run.id or idempotency is None:
            return None
        existing, _, fingerprint = reply.partition(" ")
        if fingerprint and idempotency.fingerprint and fingerprint != idempotency.fingerprint:
            raise IdempotencyConflict(idempotency.key, existing, self.idempotency_ttl)
        return existing

    def create_many(
        self, items: list[tuple[Run, dict[str, Any]]], *, idempotency: Sequence[Idempotency | None] = ()
    ) -> list[str]:
        """Create many runs in one round trip (each one still atomic), e.g. for fan-out or a backfill.

        With ``idempotency`` (one per run, or None), a run whose key was used returns the id of the run that
        has it instead: the answer is the run id each item ended up with.
        """
        with translate_errors("creating runs"):
            pipe = self.client.pipeline(transaction=False)
            for n, (run, event) in enumerate(items):
                keys, args = self._create_call(run, event, idempotency[n] if idempotency else None)
                self._create(keys=keys, args=args, client=pipe)
            return [text(reply).partition(" ")[0] for reply in pipe.execute()]

    def _create_call(
        self, run: Run, event: dict[str, Any], idempotency: Idempotency | None
    ) -> tuple[list[Any], list[Any]]:
        """The CREATE_SCRIPT call for ``run``: with its message, or, for a delayed run, its due time instead."""
        delayed = run.status == "delayed" and run.run_at is not None
        run.message_id = None if delayed else new_message_id()
        record = run.model_dump_json()
        (queue, messages), message_id, encoded = self.broker.queue_keys(), "", b""
        if not delayed:
            queue, messages, message_id, encoded = self.broker.prepare(
                run.id, run.token, snapshot=record, message_id=run.message_id
            )
        tick = idempotency is not None and run.trigger in TICK_TRIGGERS and bool(run.schedule and run.scheduled_for)
        idem = self.keys.idempotency(run.function, idempotency.surface, idempotency.key) if idempotency else ""
        keys = [self.keys.run(run.id), self.keys.event(run.id), self.keys.runs, self.keys.function_runs(run.function),
                self.keys.active, idem, messages, queue, self.keys.delayed if delayed else "",
                self.keys.schedule_ticks(run.schedule or "") if tick else ""]  # fmt: skip
        args = [run.id, record, json.dumps(event), self.idempotency_ttl, message_id, encoded, run.look_at_ms(),
                idempotency.fingerprint if idempotency else "", clock.ms(run.run_at or "") if delayed else "",
                clock.ms(run.scheduled_for or "") if tick else "",
                self.broker.later_channel if delayed else self.broker.nudge_channel]  # fmt: skip
        return keys, args

    # -- reading -------------------------------------------------------------------------------

    def get(self, run_id: str) -> Run:
        with translate_errors("reading a run"):
            pipe = self.client.pipeline(transaction=False)
            pipe.get(self.keys.run(run_id))
            pipe.hgetall(self.keys.progress(run_id))
            pipe.get(self.keys.result(run_id))
            raw, progress, result = pipe.execute()
        if raw is None:
            raise RunNotFound(run_id)
        run = parse_run(raw, run_id)
        run.progress = Progress.from_hash(progress) if progress else run.progress
        if run.result_apart and result is not None:
            run.result = json.loads(result)
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
        since: str | None = None,
    ) -> tuple[list[Run], str | None]:
        """Runs newest first. ``cursor`` is the last id of the previous page; ``since`` is the lowest id
        (or id prefix, e.g. ``jobs.runs.id_floor(ms)``) to include, so time ranges read only their runs."""
        index = self.keys.function_runs(function) if function else self.keys.runs
        upper, lower = f"({cursor}" if cursor else "+", f"[{since}" if since else "-"
        found: list[Run] = []
        batch = max(limit * 2, 50)
        with translate_errors("listing runs"):
            while len(found) < limit:
                ids = [text(i) for i in self.client.zrevrangebylex(index, upper, lower, start=0, num=batch)]
                if not ids:
                    break
                raws = self.client.mget([self.keys.run(i) for i in ids])
                for run_id, raw in zip(ids, raws, strict=True):
                    run = readable(raw, run_id) if raw is not None else None
                    if run is None or (status and run.status != status) or (trigger and run.trigger != trigger):
                        continue  # removed by retention meanwhile, unreadable (logged), or not asked for
                    found.append(run)
                    if len(found) == limit:
                        break
                upper = f"({ids[-1]}"
            pipe = self.client.pipeline(transaction=False)  # progress is kept apart: an attempt writes it often
            for run in found:
                pipe.hgetall(self.keys.progress(run.id))
            for run, fields in zip(found, pipe.execute(), strict=True):
                run.progress = Progress.from_hash(fields) if fields else run.progress
        return found, found[-1].id if found and len(found) == limit else None

    def active_ids(self, *, due_ms: int | None = None) -> list[str]:
        """Queued, running and retrying runs; with ``due_ms``, only those the reaper has a reason to look
        at by then (``Run.look_at_ms``)."""
        with translate_errors("listing active runs"):
            if due_ms is None:
                return [text(i) for i in self.client.zrange(self.keys.active, 0, -1)]
            return [text(i) for i in self.client.zrangebyscore(self.keys.active, "-inf", due_ms)]

    # -- changing ------------------------------------------------------------------------------

    def update(
        self,
        run_id: str,
        mutate: Callable[[Run, Writes], T],
        *,
        known: Run | str | None = None,
        fetch: Sequence[str] = (),
    ) -> T:
        """Apply ``mutate(run, pipe)`` and write the run back atomically, retrying on a race.

        ``mutate`` changes the run in place and may queue more commands on ``pipe`` (any redis-py
        command method) and the run's next message (``dispatch``); they are applied in the same atomic
        step as the new record. It raises SkipWrite to leave everything unchanged. It costs a read and
        a compare-and-set script call; with ``known`` (the record as this process last wrote or
        received it, as a Run or its JSON) the read is skipped unless someone changed the run since.
        Values of the ``fetch`` keys, read in the same atomic step as the write, are in
        ``pipe.fetched`` once ``update`` returns. A mutation may also take a concurrency slot
        (``pipe.take_slot``); when none is free, ``update`` raises NoSlot and writes nothing.
        """
        key = self.keys.run(run_id)
        raw: Any = known.stored if isinstance(known, Run) else known
        with translate_errors("updating a run"):
            if raw is None:
                raw = self.client.get(key)
            while True:
                write = self._prepare(run_id, raw, mutate, fetch)
                reply = self._compare_and_set(keys=write.keys, args=write.args)
                done, raw = write.settle(reply)
                if done:
                    return write.result

    def update_many(
        self, changes: Sequence[tuple[str, Callable[[Run, Writes], Any], Run | str, Sequence[str]]]
    ) -> list[Any]:
        """``update`` for many runs in one round trip: ``(run id, mutate, known record, fetch keys)`` each.

        Each run is still written by its own compare-and-set; a change whose known record is stale is
        retried alone, as ``update`` would. Each change's answer is what its ``mutate`` returned, or
        the SkipWrite, NoSlot or BackburnerError (the run is gone, or Redis went away during that
        retry) it ended with. A known record given as a Run is handed over: it is changed in place
        rather than copied.
        """
        writes: list[_Write | Exception] = []
        for run_id, mutate, known, fetch in changes:
            raw: Any = known.stored if isinstance(known, Run) else known
            try:
                if raw is None:
                    with translate_errors("reading a run"):
                        raw = self.client.get(self.keys.run(run_id))
                elif isinstance(known, Run):
                    writes.append(self._prepare(run_id, raw, mutate, fetch, run=known))
                    continue
                writes.append(self._prepare(run_id, raw, mutate, fetch))
            except (SkipWrite, BackburnerError) as exc:
                writes.append(exc)
        pending = [w for w in writes if isinstance(w, _Write)]
        with translate_errors("updating runs"):
            if pending:
                for write, reply in zip(pending, self._compare_and_set_many(pending), strict=True):
                    try:
                        done, raw = write.settle(reply)
                        if not done:  # someone changed the run since: redo this one from what is there now
                            write.result = self.update(write.run_id, write.mutate, known=raw, fetch=write.keys[1:])
                    except (SkipWrite, NoSlot, BackburnerError) as exc:
                        write.result = exc
        return [w.result if isinstance(w, _Write) else w for w in writes]

    def _compare_and_set_many(self, writes: list[_Write]) -> list[Any]:
        """Run CAS_SCRIPT for each write, all in one call of CAS_MANY_SCRIPT (one script call and one command to
        pack and parse, rather than one per write; redis-py's Script loads it into a restarted Redis)."""
        if len(writes) == 1:
            return [self._compare_and_set(keys=writes[0].keys, args=writes[0].args)]
        replies: list[Any] = []
        for start in range(0, len(writes), WRITES_PER_CALL):
            chunk = writes[start : start + WRITES_PER_CALL]
            keys: list[Any] = []
            sizes: list[int] = []
            args: list[Any] = []
            for write in chunk:
                keys += write.keys
                args += write.args
                sizes += (len(write.keys), len(write.args))
            replies += self._compare_and_set_all(keys=keys, args=[len(chunk), *sizes, *args])
        return replies

    def _prepare(
        self,
        run_id: str,
        raw: Any,
        mutate: Callable[[Run, Writes], Any],
        fetch: Sequence[str],
        *,
        run: Run | None = None,
    ) -> _Write:
        """Apply ``mutate`` to a copy of ``raw`` (or to ``run``, which holds it and is handed over) and build
        the compare-and-set call that would store it."""
        if raw is None:
            raise RunNotFound(run_id)
        if run is None:
            run = parse_run(raw, run_id)
        was_running, was_delayed = run.status == "running", run.status == "delayed"
        pipe: Any = Writes()
        result = mutate(run, pipe)
        if was_delayed and run.status != "delayed":  # promoted or cancelled: out of the due-time index
            pipe.zrem(self.keys.delayed, run.id)
        if run.status in ACTIVE:
            pipe.zadd(self.keys.active, {run.id: run.look_at_ms()})
        else:
            pipe.zrem(self.keys.active, run.id)
        if was_running and run.status != "running":  # its concurrency slot, if it had one, is free
            pipe.zrem(self.keys.concurrency(run.function), run.id)
            pipe.wake(self.keys.waiting(run.function))
        new, apart = run.record()
        if apart is not None:  # a result too big to carry in listings: written beside the record, with it
            pipe.set(self.keys.result(run.id), apart)
        for message_id, delay_s in pipe.dispatches:
            self.broker.enqueue_in(pipe, run.id, run.token, snapshot=new, message_id=message_id, delay_s=delay_s)
        queue, messages = self.broker.queue_keys()
        wake: tuple[Any, ...]
        if pipe.waiting:
            wake = (pipe.waiting, self.keys.run(""), messages, queue, self.broker.wake_message, clock.now_ms())
        else:  # no waiting list to look at: only the queue, for the nudge
            wake = ("", "", "", queue, "", 0)
        args = [raw, new, *pipe.plan([*pipe.guard, *wake, self.broker.nudge_channel])]
        return _Write(run_id, mutate, run, new, pipe, result, [self.keys.run(run_id), *fetch], args)

    def dispatch(self, pipe: Any, run: Run, *, delay_s: float | None = None) -> None:
        """From a mutation: send ``run``'s next message (for its token) with the write; ``delay_s`` defers it.
        The message carries the record as written, so the worker's claim needs no read."""
        run.message_id = new_message_id()
        pipe.dispatches.append((run.message_id, delay_s))

    def request_cancel(self, run_id: str) -> None:
        with translate_errors("cancelling a run"):
            self.client.set(self.keys.cancel(run_id), 1, ex=7 * 86400)

    def children(self, run_id: str) -> list[str]:
        """Ids of the runs ``run_id`` started (recorded by ``jobs.execution.spawn`` before it creates them)."""
        with translate_errors("reading a run's children"):
            return sorted(text(i) for i in self.client.smembers(self.keys.children(run_id)))

    def cancel_requested(self, run_id: str) -> bool:
        return bool(self.client.exists(self.keys.cancel(run_id)))

    def attempt_stop(self, run_id: str, token: str, client: redis.Redis | None = None) -> str | None:
        """Why the attempt holding ``token`` must stop now: ``"cancelled"``, ``"lost"`` (given up for lost
        while its worker stalled; the run resumed elsewhere), or None. One round trip, through ``client``
        if given."""
        reader = client if client is not None else self.client
        cancelled, lost = reader.mget(self.keys.cancel(run_id), self.keys.lost(run_id, token))
        return "lost" if lost is not None else "cancelled" if cancelled is not None else None

    def logs(self, run_id: str, start: int = 0) -> list[dict[str, Any]]:
        with translate_errors("reading logs"):
            return [json.loads(line) for line in self.client.lrange(self.keys.logs(run_id), start, -1)]
