"""The durable webhook outbox: pending deliveries in Redis, and the ``Deliverer`` thread that sends them.

Layout: a sorted set ``<ns>:outbox:due`` (delivery id -> due time in ms) and a hash per delivery
``<ns>:outbox:msg:<id>`` (the event, attempts made so far, the current claim). Everything lives in Redis, so
pending deliveries survive worker and API restarts.

Claiming is one Lua script: it takes due ids and pushes their due time ``lease`` into the future, tagging
each with the claimer's token. Two workers never send the same attempt at once, and a crashed worker's
claim comes due again when the lease runs out (at-least-once). The outcome is recorded on the run
(``deliveries``) in the same transaction that reschedules or removes the entry. An attempt made while Redis
is away is recorded once it is back (within ``PATIENCE_S``); should its claim run out meanwhile, or while a slow
receiver holds the attempt, the same worker claims it again without sending it, but another worker may send it
again (same ``webhook-id``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import redis

from .. import clock
from ..artifacts.stores import linked_artifacts, run_store
from ..broker import Outage
from ..errors import BackburnerError, Conflict, InvalidInput, RunNotFound, StoreUnavailable
from ..keys import Keys, text
from ..metrics import count_delivery
from ..runs import Run
from ..scripts import OUTBOX_CLAIM_SCRIPT
from ..settings import Settings
from ..site import Function
from ..store import RunStore, translate_errors
from ..writes import Writes
from .webhooks import RETRY_SCHEDULE_S, deliver, display_url, generate_secret, next_delay

log = logging.getLogger("backburner.outbox")

#: How long an attempt made waits for an unavailable Redis to be recorded, before its claim is left to come due
#: (and the attempt to be made again, with the same ``webhook-id``).
PATIENCE_S = 300.0


@dataclass
class Entry:
    """One webhook event for one URL; ``id`` is the ``webhook-id``, the same on every attempt."""

    id: str
    run_id: str
    function: str
    url: str
    event: str
    occurred_at: str
    run: dict[str, Any] = field(repr=False)
    attempts: int = 0


def enqueue(pipe: Any, keys: Keys, entry: Entry, due_ms: int | None = None) -> None:
    """Queue ``entry`` on ``pipe`` (a MULTI pipeline: it lands with the rest of the transaction)."""
    data = {k: v for k, v in asdict(entry).items() if k != "attempts"}
    pipe.hset(keys.outbox_entry(entry.id), mapping={"data": json.dumps(data), "attempts": entry.attempts, "claim": ""})
    pipe.zadd(keys.outbox_due, {entry.id: clock.now_ms() if due_ms is None else due_ms})


class Outbox:
    """Reads and claims pending deliveries; ``reschedule``/``complete`` queue their writes on a pipeline."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._claim = client.register_script(OUTBOX_CLAIM_SCRIPT)

    def claim(self, limit: int, lease_s: float, token: str) -> list[str]:
        if limit <= 0:
            return []
        args: list[str | int] = [clock.now_ms(), int(lease_s * 1000), limit, token, self.keys.outbox_entry("")]
        return [text(i) for i in self._claim(keys=[self.keys.outbox_due], args=args)]

    def load(self, entry_id: str) -> Entry | None:
        fields = self.client.hgetall(self.keys.outbox_entry(entry_id))
        if not fields:
            return None
        data = json.loads(fields[b"data"])
        return Entry(**data, attempts=int(fields.get(b"attempts", 0)))

    def owns(self, entry_id: str, token: str, client: Any = None) -> bool:
        """Whether ``token`` holds the entry's claim (read through ``client``, a watching pipeline, if given)."""
        reader = self.client if client is None else client
        return text(reader.hget(self.keys.outbox_entry(entry_id), "claim") or b"") == token

    def reschedule(self, pipe: Any, entry_id: str, attempts: int, due_ms: int) -> None:
        pipe.hset(self.keys.outbox_entry(entry_id), mapping={"attempts": attempts, "claim": ""})
        pipe.zadd(self.keys.outbox_due, {entry_id: due_ms})

    def complete(self, pipe: Any, entry_id: str) -> None:
        pipe.zrem(self.keys.outbox_due, entry_id)
        pipe.delete(self.keys.outbox_entry(entry_id))

    def pending(self) -> int:
        return int(self.client.zcard(self.keys.outbox_due))


class Deliverer:
    """A thread in every worker process: claims due deliveries, sends them on a small pool, records them.

    ``functions`` looks a function up in the current site (for its artifact store, when signing links).
    """

    def __init__(
        self, settings: Settings, store: RunStore, functions: Callable[[str], Function | None], owner: str
    ) -> None:
        self.settings = settings
        self.store = store
        self.functions = functions
        self.keys = store.keys
        self.client: redis.Redis = store.client
        self.outbox = Outbox(self.client, self.keys)
        self.schedule = settings.webhook_retry_schedule or RETRY_SCHEDULE_S
        self.lease_s = max(settings.outbox_lease, settings.webhook_timeout + 30)
        self.token = f"{owner}:{uuid.uuid4().hex[:8]}"
        self._slots = max(1, settings.webhook_concurrency)
        self._busy = 0
        self._busy_lock = threading.Lock()
        #: Deliveries this worker is sending or recording now (under _busy_lock): a claim of one that ran out
        #: (a receiver slower than the lease) comes back to us, and is not sent a second time beside itself.
        self._in_hand: set[str] = set()
        self._freed = threading.Event()  # a sender finished: a saturated loop claims again at once
        self._pool = ThreadPoolExecutor(self._slots, thread_name_prefix="backburner-webhook")
        self._http = httpx.Client(follow_redirects=False, timeout=settings.webhook_timeout)
        self._secret: str | None = settings.webhook_secret
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Deliverer:
        self._thread = threading.Thread(target=self._loop, name="backburner-deliverer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop claiming; sends in flight finish on their own, unsent claims come back after the lease."""
        self._stop.set()
        self._freed.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _loop(self) -> None:
        """Poll for due deliveries; while every sender finds one (a backlog), claim again as each sender frees
        rather than once a poll, so deliveries keep up with the runs that make them."""
        outage = Outage(log, "outbox")
        interval = self.settings.outbox_poll_interval
        while not self._stop.is_set():
            self._freed.clear()  # before counting free senders: one freed after the count wakes the wait below
            backlog = False
            try:
                with self._busy_lock:
                    free = self._slots - self._busy
                backlog = free > 0 and self.pump() == free
                outage.answered()
            except redis.RedisError as exc:
                outage.failed(exc)
            except Exception:
                log.exception("outbox: poll failed")
            (self._freed if backlog else self._stop).wait(interval)

    def pump(self) -> int:
        """Claim as many due deliveries as there are free senders and start them; return how many."""
        with self._busy_lock:
            free = self._slots - self._busy
        ids = self.outbox.claim(free, self.lease_s, self.token)
        sent = 0
        for entry_id in ids:
            with self._busy_lock:
                if entry_id in self._in_hand:  # being sent, or made and its record waiting: that settles it
                    continue
                self._in_hand.add(entry_id)
                self._busy += 1
            self._pool.submit(self._send, entry_id)
            sent += 1
        return sent

    def _send(self, entry_id: str) -> None:
        try:
            self.process(entry_id)
        except Exception:  # the claim returns after the lease; the next attempt is another chance
            log.exception("outbox: delivery %s failed unexpectedly", entry_id)
        finally:
            with self._busy_lock:
                self._busy -= 1
                self._in_hand.discard(entry_id)
            self._freed.set()

    def secret(self) -> str:
        """BACKBURNER_WEBHOOK_SECRET; in `dev` without one, a secret generated once and kept in Redis."""
        if self._secret is None:
            if self.client.set(self.keys.webhook_secret, generate_secret(), nx=True):
                log.warning(
                    "no BACKBURNER_WEBHOOK_SECRET: generated a webhook signing secret for dev and stored it in "
                    "Redis key %r (read it with `redis-cli GET %s`); set BACKBURNER_WEBHOOK_SECRET to choose one",
                    self.keys.webhook_secret,
                    self.keys.webhook_secret,
                )
            self._secret = text(self.client.get(self.keys.webhook_secret) or b"")
        return self._secret

    def process(self, entry_id: str) -> dict[str, Any] | None:
        """Make the next attempt of one claimed delivery and record it; the record, or None if gone."""
        entry = self.outbox.load(entry_id)
        if entry is None:
            return None
        n = entry.attempts + 1
        record = self._attempt(entry, n)
        due_ms: int | None = None
        if record["outcome"] is None:  # failed, and may be retried
            next_s = next_delay(n, record["retry_after_s"], self.schedule)
            if next_s is None:
                record["outcome"] = "gave_up"
            else:
                due_ms = clock.now_ms() + int(next_s * 1000 * (1 + random.uniform(0, 0.1)))  # spread retry storms
                record["outcome"] = "retrying"
                record["next_attempt_at"] = clock.iso(datetime.fromtimestamp(due_ms / 1000, UTC))
        if record["outcome"] in ("gave_up", "disabled", "refused"):
            log.warning("run %s: webhook %s to %s: %s", entry.run_id, entry.id, record["url"], record["outcome"])
        self._record_patiently(entry, record, n, due_ms, gone=record["outcome"] == "disabled")
        return record

    def _attempt(self, entry: Entry, n: int) -> dict[str, Any]:
        """Send attempt ``n`` (or decide not to); ``outcome`` is None when the next attempt is due later."""
        gone_key = self.keys.webhooks_gone(entry.function)
        if self.client.sismember(gone_key, entry.url):
            why = f"not sent: the endpoint answered 410 Gone earlier, so it is disabled for {entry.function!r} "
            again = f"POST /api/functions/{entry.function}/webhooks/enable"
            return _note(entry, n, "skipped", why + f"(to re-enable it: {again})")
        try:
            attempt = deliver(
                entry.url,
                entry.id,
                entry.event,
                event_payload(entry, self.settings, self.functions),
                secret=self.secret(),
                attempt=n,
                timeout_s=self.settings.webhook_timeout,
                client=self._http,
                allow=self.settings.webhook_allow_list,
                occurred_at=clock.parse_iso(entry.occurred_at),
            )
        except InvalidInput as exc:  # refused by the SSRF guard (or not JSON): retrying cannot help
            return _note(entry, n, "refused", exc.message)
        except Exception as exc:
            log.exception("outbox: attempt %d of %s could not be made", n, entry.id)
            return _note(entry, n, None, f"{type(exc).__name__}: {exc}")
        outcome = "delivered" if attempt.ok else "disabled" if attempt.gone else None
        return {**attempt.to_dict(), "event": entry.event, "outcome": outcome, "next_attempt_at": None}

    def _record_patiently(
        self, entry: Entry, record: dict[str, Any], n: int, due_ms: int | None, *, gone: bool
    ) -> None:
        """``_record``, waiting out a Redis outage: the attempt was made, and a record that does not land lets
        its claim come due and the attempt be made again. Meanwhile ``pump`` does not send it again."""
        deadline = time.monotonic() + PATIENCE_S
        delay = 0.1
        outage = Outage(log, f"run {entry.run_id}: webhook {entry.id} attempt {n}")
        while True:
            try:
                self._record(entry, record, n, due_ms, gone=gone)
                outage.answered()
                return
            except (StoreUnavailable, redis.RedisError) as exc:
                outage.failed(exc, "it was made, and recording it waits for Redis")
                if time.monotonic() > deadline or self._stop.wait(delay):
                    log.error(
                        "run %s: webhook %s attempt %d was made but could not be recorded (%s); it will be "
                        "made again with the same webhook-id",
                        entry.run_id,
                        entry.id,
                        n,
                        exc,
                    )
                    return
                delay = min(delay * 2, 1.0)  # as often as workers poll: once Redis is back, land first

    def _record(self, entry: Entry, record: dict[str, Any], n: int, due_ms: int | None, *, gone: bool) -> None:
        """Append the attempt to the run and settle the entry (reschedule or remove it), in one transaction.

        Safe to repeat: a try whose answer was lost may have landed, and the record is not appended twice; its
        entry is settled again, as the worker may have claimed it anew meanwhile (its claim ran out). A retry is
        settled only while the claim is still this worker's as the write lands: another worker that claimed the
        entry after our claim ran out is sending it again, and settles it itself."""
        key = self.keys.outbox_entry(entry.id)

        def outbox_writes(pipe: Any, claim: contextlib.AbstractContextManager[Any] | None) -> None:
            """``claim``: what makes writes land only while the claim is ours; None: it is not."""
            if gone:
                pipe.sadd(self.keys.webhooks_gone(entry.function), entry.url)
            if record["outcome"] == "delivered":  # nothing is left to send, whoever holds it
                self.outbox.complete(pipe, entry.id)
            elif claim is not None:
                with claim:
                    if due_ms is None:
                        self.outbox.complete(pipe, entry.id)
                    else:
                        self.outbox.reschedule(pipe, entry.id, n, due_ms)

        def mutate(run: Run, pipe: Writes) -> None:
            if record not in run.deliveries:  # else an earlier try landed and its answer was lost
                run.deliveries.append(record)
                count_delivery(pipe, self.keys, entry.function, record["outcome"])
            outbox_writes(pipe, pipe.only_while(key, "claim", self.token))

        def alone(pipe: Any) -> None:  # the entry is watched: the claim read below still holds when this lands
            owned = self.outbox.owns(entry.id, self.token, client=pipe)
            pipe.multi()
            outbox_writes(pipe, contextlib.nullcontext() if owned else None)

        try:
            self.store.update(entry.run_id, mutate)
        except RunNotFound:  # removed by retention meanwhile: nothing to record on
            self.client.transaction(alone, key)


def event_payload(entry: Entry, settings: Settings, functions: Callable[[str], Function | None]) -> dict[str, Any]:
    """The webhook's ``data``: the run record as it was when it finished, with artifact links made fresh for
    this attempt (a retry hours later still carries links that work)."""
    data = dict(entry.run)
    if data.get("artifacts"):
        run = Run.model_validate(entry.run)
        try:
            data["artifacts"] = linked_artifacts(run, run_store(settings, functions, run), settings)
        except BackburnerError as exc:  # cannot sign links now: send the API's download URLs instead
            log.warning("run %s: no presigned artifact links (%s); sending API links", run.id, exc.message)
            base = settings.url.rstrip("/")
            data["artifacts"] = [
                {**a, "url": base + str(a.get("url") or ""), "expires_at": None} for a in data["artifacts"]
            ]
    return data


def disabled_endpoints(client: redis.Redis, keys: Keys, functions: list[str]) -> dict[str, list[str]]:
    """Per function, the webhook URLs that answered 410 Gone and are no longer sent to."""
    with translate_errors("reading disabled webhooks"):
        pipe = client.pipeline(transaction=False)
        for name in functions:
            pipe.smembers(keys.webhooks_gone(name))
        found = pipe.execute()
    return {name: sorted(text(url) for url in urls) for name, urls in zip(functions, found, strict=True)}


def enable_endpoints(client: redis.Redis, keys: Keys, function: str, url: str | None = None) -> list[str]:
    """Send to ``url`` (or every disabled URL of ``function``) again; returns the URLs re-enabled, as listings show
    them (``display_url``: no user info or query). ``url`` may be written either way."""
    [disabled] = disabled_endpoints(client, keys, [function]).values()
    chosen = disabled if url is None else [u for u in disabled if url in (u, display_url(u))]
    if url is not None and not chosen:
        shown = ", ".join(display_url(u) for u in disabled) or "none"
        raise Conflict(f"{display_url(url)} is not a disabled webhook of {function!r} (disabled: {shown}).")
    if chosen:
        with translate_errors("re-enabling webhooks"):
            client.srem(keys.webhooks_gone(function), *chosen)
    return [display_url(u) for u in chosen]


def _note(entry: Entry, n: int, outcome: str | None, error: str) -> dict[str, Any]:
    """A delivery record for an attempt that sent nothing (same fields as ``webhooks.Attempt``)."""
    return {
        "url": display_url(entry.url),
        "webhook_id": entry.id,
        "attempt": n,
        "at": clock.iso(clock.now()),
        "status": None,
        "ok": False,
        "error": error,
        "duration_ms": 0.0,
        "retry_after_s": None,
        "gone": False,
        "event": entry.event,
        "outcome": outcome,
        "next_attempt_at": None,
    }
