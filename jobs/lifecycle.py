"""How a run moves between states.

    queued ──claim──> running ──ok──────────────> succeeded
       ^                 │ ──fail, tries left──> retrying ──(delay)──> claim again
       │                 │ ──fail, none left───> failed
       └──worker lost────┘ ──cancel────────────> cancelled
       └──released (fetched by a stopping worker, never started; the attempt does not count)

A claim that finds no free concurrency slot leaves the run queued in its function's waiting list;
the transition that frees a slot wakes the first waiting run.

Every transition is one compare-and-set of the run record; the message for the next attempt
is queued in the same transaction, so a crash between "recorded" and "scheduled" cannot happen.
Hooks (``jobs.hooks``) run inside that transaction when a run reaches a final state, so what they
queue (webhook deliveries, for instance) is written exactly once with it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from . import clock
from .errors import Conflict, RunNotFound, StoreUnavailable
from .hooks import RunHook
from .runs import ArtifactRef, AttemptInfo, ErrorInfo, Result, Run, new_id, new_token, parse_run
from .store import RunStore, SkipWrite
from .writes import Writes

#: The longest wait before a retry (``retries`` allow 7 days); a record asking for more waits this long.
MAX_DELAY_S = 7 * 86400.0
#: How long an attempt given up for lost stays marked, for its worker to see if it was only stalled (the
#: longest time limit is a day).
LOST_MARK_S = 2 * 86400


@dataclass(frozen=True)
class FinishedAttempt:
    """A finished attempt waiting to be recorded: the run as claimed (handed over: recording changes it),
    its token, what happened, and ``also(pipe)``, writes that commit with it."""

    run: Run
    token: str
    result: Result
    also: Callable[[Writes], None] | None = None

    def as_claimed(self) -> FinishedAttempt:
        """This attempt with its run as claimed again. Recording changes the run in place, so a write that
        did not commit (Redis went away) must be tried again from the stored record: from the changed one,
        the attempt would look already recorded, and its outcome would be dropped."""
        if self.run.stored is None:
            return self
        run = parse_run(self.run.stored, self.run.id)
        run.stored = self.run.stored
        return replace(self, run=run)


def _event(raw: Any) -> dict[str, Any]:
    return json.loads(raw) if raw is not None else {}


def _started_by(run: Run, token: str, worker: str, message_id: str | None) -> bool:
    """Is ``run``'s current attempt the one this message started in this worker? (Another message with
    the same token, such as a wake-up and its fallback, is a different message.)"""
    return (
        message_id is not None
        and run.status == "running"
        and run.token == token
        and run.worker == worker
        and bool(run.attempts)
        and run.attempts[-1].message == message_id
    )


class Lifecycle:
    def __init__(self, store: RunStore, hooks: Sequence[RunHook] = ()) -> None:
        self.store = store
        self.hooks = list(hooks)

    # -- worker side ---------------------------------------------------------------------------

    def claim(
        self,
        run_id: str,
        token: str,
        worker: str,
        snapshot: str | None = None,
        *,
        concurrency: Callable[[str], int | None] | None = None,
        message_id: str | None = None,
    ) -> tuple[Run, dict[str, Any]] | None:
        """Start the next attempt if ``token`` is current: the run and its event, or None for a stale message.

        ``snapshot`` is the record as the message was sent with it; while it is current, claiming is one
        round trip. ``concurrency(function)`` is the function's limit on running runs (None: no limit);
        when every slot is taken this raises NoSlot and changes nothing. ``message_id`` (the Redis id of
        the message) makes the claim safe to repeat: one whose reply was lost finds its attempt started.
        """
        try:
            run, pipe = self.store.update(
                run_id,
                self._start(token, worker, concurrency, message_id),
                known=snapshot,
                fetch=[self.store.keys.event(run_id)],
            )
        except SkipWrite:
            return None
        return run, _event(pipe.fetched[0])

    def claim_many(
        self,
        messages: Sequence[tuple[str, str, str, str]],
        worker: str,
        *,
        concurrency: Callable[[str], int | None] | None = None,
    ) -> list[tuple[Run, dict[str, Any]] | None | Exception]:
        """``claim`` for many ``(run id, token, snapshot, message id)`` messages in one round trip. In place
        of a run: NoSlot when its function has no free slot, a BackburnerError when it could not be claimed."""
        changes = [
            (run_id, self._start(token, worker, concurrency, message_id), snapshot, [self.store.keys.event(run_id)])
            for run_id, token, snapshot, message_id in messages
        ]
        claimed: list[tuple[Run, dict[str, Any]] | None | Exception] = []
        for answer in self.store.update_many(changes):
            if isinstance(answer, SkipWrite):
                claimed.append(None)
            elif isinstance(answer, Exception):
                claimed.append(answer)
            else:
                run, pipe = answer
                claimed.append((run, _event(pipe.fetched[0])))
        return claimed

    def _start(
        self, token: str, worker: str, concurrency: Callable[[str], int | None] | None, message_id: str | None
    ) -> Callable[[Run, Writes], tuple[Run, Writes]]:
        """The mutation that starts the next attempt of the run whose message holds ``token``."""

        def mutate(run: Run, pipe: Writes) -> tuple[Run, Writes]:
            if _started_by(run, token, worker, message_id):  # this claim already landed; its reply was lost
                return run, pipe
            if run.token != token or run.status not in ("queued", "retrying"):
                raise SkipWrite
            limit = concurrency(run.function) if concurrency is not None else None
            if limit:
                pipe.take_slot(self.store.keys.concurrency(run.function), limit, run.id)
            now = clock.iso(clock.now())
            run.status = "running"
            run.attempt += 1
            run.started_at = run.started_at or now
            run.next_attempt_at = None
            run.worker = worker
            run.attempts.append(AttemptInfo(n=run.attempt, started_at=now, worker=worker, message=message_id))
            return run, pipe

        return mutate

    def release(self, run: Run, token: str) -> Run | None:
        """Undo a claim whose attempt never started (its worker is stopping): the run is queued again
        with a new message, and the attempt does not count."""

        def mutate(current: Run, pipe: Writes) -> Run:
            if current.token != token or current.status != "running" or current.attempt != run.attempt:
                raise SkipWrite
            current.attempts.pop()
            current.attempt -= 1
            current.status = "queued"
            current.worker = None
            if not current.attempts:
                current.started_at = None
            current.token = new_token()
            self.store.dispatch(pipe, current)
            return current

        try:
            return self.store.update(run.id, mutate, known=run)
        except SkipWrite:
            return None

    def finish_many(self, outcomes: Sequence[FinishedAttempt]) -> list[Run | None]:
        """Record the outcomes of claimed attempts in one round trip (each run is still its own atomic write) and
        decide what comes next for each; None in place of an attempt that was superseded. A finished
        attempt's ``also(pipe)`` adds writes that must commit with its outcome (the worker acks there)."""
        changes = [(o.run.id, self._outcome(o.token, o.result, o.also), o.run, ()) for o in outcomes]
        recorded: list[Run | None] = []
        for outcome, run in zip(outcomes, self.store.update_many(changes), strict=True):
            if isinstance(run, StoreUnavailable):  # the caller retries the batch; what was written is skipped
                raise run
            if isinstance(run, Exception):  # superseded, or the run is gone
                recorded.append(None)
                continue
            for hook in self.hooks:
                hook.after_attempt(run, outcome.result)
            recorded.append(run)
        return recorded

    def _outcome(
        self, token: str, result: Result, also: Callable[[Writes], None] | None
    ) -> Callable[[Run, Writes], Run]:
        """The mutation that records ``result`` as the outcome of the attempt holding ``token``."""

        def mutate(run: Run, pipe: Writes) -> Run:
            if run.token != token or run.status != "running":
                raise SkipWrite
            if also is not None:
                also(pipe)
            now = clock.now()
            attempt = run.attempts[-1]
            attempt.finished_at = clock.iso(now)
            attempt.outcome = result.outcome
            run.worker = None
            if result.artifact_store is not None:
                run.artifact_store = result.artifact_store
            if result.ok:
                run.status = "succeeded"
                run.result = result.value
                run.error = None
                run.artifacts = [ArtifactRef(**a) for a in result.artifacts]
                run.finished_at = attempt.finished_at
                self._terminal(run, pipe)
            else:
                error = ErrorInfo(**(result.error or {"type": "Error", "message": "unknown failure"}))
                attempt.error = error
                run.error = error
                if result.kind == "cancelled":
                    run.status = "cancelled"
                    run.result = result.value  # what a handler that stopped early returned, if it did
                    run.finished_at = attempt.finished_at
                    self._terminal(run, pipe)
                else:
                    self._retry_or_fail(run, pipe, now, result.error or {})
            for hook in self.hooks:
                hook.on_attempt(run, result, pipe)
            return run

        return mutate

    def _retry_or_fail(self, run: Run, pipe: Writes, now: Any, error: dict[str, Any]) -> None:
        """Schedule the next attempt, or fail for good; the handler may have asked for either
        (``jobs.retry``: ``retry: False``, or ``retry_after_s`` instead of the configured delay)."""
        if run.attempt < run.max_attempts and error.get("retry", True):
            asked = error.get("retry_after_s")
            delay = float(asked) if asked is not None else run.retry_delays_s[run.attempt - 1]
            delay = min(max(delay, 0.0), MAX_DELAY_S)  # a record from before delays were bounded
            run.status = "retrying"
            run.next_attempt_at = clock.iso(now + timedelta(seconds=delay))
            run.token = new_token()
            self.store.dispatch(pipe, run, delay_s=delay)
        else:
            run.status = "failed"
            run.finished_at = clock.iso(now)
            self._terminal(run, pipe)

    def _terminal(self, run: Run, pipe: Writes) -> None:
        run.token = new_token()  # any message still in flight is now stale
        for hook in self.hooks:
            hook.on_terminal(run, pipe)

    # -- reaper side ---------------------------------------------------------------------------

    def lose(self, run_id: str, worker: str, reason: str) -> Run | None:
        """The worker holding the attempt is gone: the attempt counts, and the run resumes at once."""

        def mutate(run: Run, pipe: Writes) -> Run:
            if run.status != "running" or run.worker != worker:
                raise SkipWrite
            pipe.set(self.store.keys.lost(run.id, run.token), 1, ex=LOST_MARK_S)  # a stalled worker stops it
            now = clock.now()
            attempt = run.attempts[-1]
            attempt.finished_at = clock.iso(now)
            attempt.outcome = "lost"
            attempt.error = run.error = ErrorInfo(type="WorkerLost", message=reason)
            run.worker = None
            if run.attempt < run.max_attempts:
                run.status = "queued"
                run.token = new_token()
                self.store.dispatch(pipe, run)
            else:
                run.status = "failed"
                run.finished_at = attempt.finished_at
                self._terminal(run, pipe)
            return run

        try:
            return self.store.update(run_id, mutate)
        except SkipWrite:
            return None

    def wait_for_slot(self, run_id: str, token: str, fallback_s: float) -> Run | None:
        """Park a run that could not start because its function had no free slot.

        It joins the function's waiting list; the write that frees a slot gives the first waiting
        run a message (the wake-up in ``jobs.scripts.CAS_SCRIPT``). A delayed message ``fallback_s`` later looks again
        in case no wake-up comes (a stale waiting entry used it up, for instance).
        """

        def mutate(run: Run, pipe: Writes) -> Run:
            if run.token != token or run.status not in ("queued", "retrying"):
                raise SkipWrite
            run.token = new_token()
            if run.status == "retrying":
                run.next_attempt_at = clock.iso(clock.now() + timedelta(seconds=fallback_s))
            self.store.dispatch(pipe, run, delay_s=fallback_s)
            pipe.rpush(self.store.keys.waiting(run.function), run.id)
            return run

        try:
            return self.store.update(run_id, mutate)
        except SkipWrite:
            return None

    def redispatch(self, run_id: str, token: str) -> Run | None:
        """Send a fresh message for a run whose message went missing (e.g. held by a dead consumer)."""

        def mutate(run: Run, pipe: Writes) -> Run:
            if run.token != token or run.status not in ("queued", "retrying"):
                raise SkipWrite
            run.token = new_token()
            self.store.dispatch(pipe, run)
            return run

        try:
            return self.store.update(run_id, mutate)
        except SkipWrite:
            return None

    # -- API side ------------------------------------------------------------------------------

    def cancel(self, run_id: str) -> Run:
        """Cancel a queued or retrying run at once; ask the worker to stop a running one.

        The runs it started (``context.spawn``, e.g. a batch fan-out) are cancelled with it.
        """
        cancelled = self._cancel(run_id)
        self.cancel_children(run_id)
        return cancelled

    def cancel_children(self, run_id: str) -> None:
        """Cancel the active runs that ``run_id`` started, and the ones those started; finished ones stay."""
        pending, seen = [run_id], {run_id}
        while pending:
            for child in self.store.children(pending.pop()):
                if child in seen:
                    continue
                seen.add(child)
                pending.append(child)
                # Already finished, or its record is not written yet (then the spawner sees the cancel).
                with contextlib.suppress(Conflict, RunNotFound):
                    self._cancel(child)

    def _cancel(self, run_id: str) -> Run:
        def mutate(run: Run, pipe: Writes) -> Run:
            if run.terminal:
                raise Conflict(f"Run {run.id} is already {run.status}; only active runs can be cancelled.")
            if run.status == "running":
                raise SkipWrite
            run.status = "cancelled"
            run.finished_at = clock.iso(clock.now())
            run.next_attempt_at = None
            # What ended it, as for a running one (a retrying run's error was its last attempt's; it stays there).
            run.error = ErrorInfo(type="Cancelled", message="the run was cancelled")
            self._terminal(run, pipe)
            return run

        self.store.request_cancel(run_id)
        try:
            return self.store.update(run_id, mutate)
        except SkipWrite:
            return self.store.get(run_id)


def new_run(
    function: Any, trigger: str, *, scheduled_for: str | None = None, idempotency_key: str | None = None
) -> Run:
    """A fresh run of ``function`` (a ``jobs.site.Function``) with the limits for ``trigger``."""
    limits = function.limits(trigger)
    return Run(
        id=new_id(),
        function=function.name,
        trigger=trigger,  # type: ignore[arg-type]
        created_at=clock.iso(clock.now()),
        scheduled_for=scheduled_for,
        max_attempts=1 + len(limits.retry_delays_s),
        time_limit_s=limits.time_limit_s,
        retry_delays_s=list(limits.retry_delays_s),
        idempotency_key=idempotency_key,
    )
