"""Per-schedule state in Redis, shared by the scheduler (which fires ticks) and the API (which pauses them).

It lives in Redis, not in a scheduler's memory, so pause/resume survive restarts of every process and a
new leader carries on exactly where the old one stopped. One hash per schedule:

    paused         "1" while paused (ticks neither fire nor catch up later)
    handled_until  every tick at or before this instant has been fired, skipped or dropped
    cron           the expression and time zone those ticks were of: another one starts afresh (no ticks of the
                   new one from before the edit), as a schedule removed from netlify.toml and added back does
    last_fired     the tick of the newest run the scheduler created
    last_run       id of the newest scheduled run (ticks and "run now"); overlap checks look at it
    pending        overlap = "queue": the one tick waiting for the previous run to end
    skipped        how many ticks did not run (overlap or missed), with the newest in a capped list

The scheduler's writes (``start``, ``advance``, ``fired``, ``set_pending``, ``record_skips``) are fenced by its
leader lease (``schedule_write.lua``): one that reaches Redis after the lead passed on is dropped (NotLeader),
so a leader cut off mid-tick cannot move the state back in time or record a tick the new leader fired as
missed. They never move ``handled_until`` or ``last_fired`` back, and never write the state of a schedule
created through the API that was deleted meanwhile.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import redis

from .. import clock
from ..errors import NotLeader
from ..keys import Keys, text
from ..scripts import lua
from ..store import translate_errors
from ..writes import Fence

#: Skipped ticks kept per schedule for inspection (the count covers all of them).
SKIP_HISTORY = 100

SkipReason = Literal["overlap", "missed", "queue-full"]


@dataclass(frozen=True)
class ScheduleStatus:
    """What Redis knows about one schedule."""

    name: str
    paused: bool = False
    handled_until: datetime | None = None
    last_fired: datetime | None = None
    last_run: str | None = None
    pending: datetime | None = None
    skipped: int = 0
    last_skipped: datetime | None = None
    cron: str | None = None


def _moment(fields: dict[str, str], name: str) -> datetime | None:
    value = fields.get(name)
    return clock.parse_iso(value) if value else None


def _status(name: str, raw: dict[Any, Any]) -> ScheduleStatus:
    fields = {text(key): text(value) for key, value in raw.items()}
    return ScheduleStatus(
        name=name,
        paused=fields.get("paused") == "1",
        handled_until=_moment(fields, "handled_until"),
        last_fired=_moment(fields, "last_fired"),
        last_run=fields.get("last_run") or None,
        pending=_moment(fields, "pending"),
        skipped=int(fields.get("skipped", 0)),
        last_skipped=_moment(fields, "last_skipped"),
        cron=fields.get("cron") or None,
    )


class ScheduleState:
    """Reads and writes schedule state; every method is one round trip (a pipeline where needed)."""

    def __init__(self, client: redis.Redis, keys: Keys, fence: Fence | None = None) -> None:
        self.client = client
        self.keys = keys
        self.fence = fence
        self._write_script = client.register_script(lua("schedule_write"))

    def get(self, name: str) -> ScheduleStatus:
        return self.load([name])[name]

    def load(self, names: Sequence[str]) -> dict[str, ScheduleStatus]:
        with translate_errors("reading schedules"):
            pipe = self.client.pipeline(transaction=False)
            for name in names:
                pipe.hgetall(self.keys.schedule(name))
            raws = pipe.execute()
        return {name: _status(name, raw) for name, raw in zip(names, raws, strict=True)}

    def pause(self, name: str) -> None:
        """Stop firing; a tick waiting behind a running run (overlap = queue) is dropped too."""
        with translate_errors("pausing a schedule"), self.client.pipeline() as pipe:
            pipe.hset(self.keys.schedule(name), "paused", "1")
            pipe.hdel(self.keys.schedule(name), "pending")
            pipe.execute()

    def resume(self, name: str, now: datetime) -> None:
        """Fire again from ``now``: ticks that fell in the pause are not caught up."""
        with translate_errors("resuming a schedule"):
            self.client.hset(self.keys.schedule(name), mapping={"paused": "0", "handled_until": clock.iso(now)})

    def start(self, name: str, now: datetime, *, cron: str | None = None, revision: str | None = None) -> None:
        """A schedule seen for the first time starts at ``now`` (no runs for the time before it existed), for
        ``cron`` (its expression and zone). ``revision``, for a schedule created through the API: its state is
        written only while that schedule exists (not deleted, nor deleted and created anew); None for
        netlify.toml's."""
        written = {"cron": cron} if cron is not None else None
        self._write(name, revision, "starting a schedule", setnx={"handled_until": clock.iso(now)}, set_=written)

    def restart(self, name: str, now: datetime, *, cron: str, revision: str | None = None) -> None:
        """The schedule's expression or zone changed: the new one starts at ``now``, as a new schedule would."""
        self._write(
            name, revision, "restarting a schedule", forward={"handled_until": clock.iso(now)}, set_={"cron": cron}
        )

    def forget(self, name: str) -> None:
        """A schedule gone from netlify.toml: if it comes back, it starts afresh (its ticks meanwhile were never
        due). Its history (last run, skips) stays for the listings."""
        self._write(name, None, "forgetting a removed schedule", delete=["handled_until", "pending", "cron"])

    def keys_of(self, name: str) -> list[str]:
        """Every key of one schedule's state (removed with a schedule created through the API)."""
        return [self.keys.schedule(name), self.keys.schedule_skips(name), self.keys.schedule_ticks(name)]

    def advance(self, name: str, until: datetime, *, revision: str | None = None) -> None:
        self._write(name, revision, "advancing a schedule", forward={"handled_until": clock.iso(until)})

    def fired(self, name: str, tick: datetime, run_id: str, *, revision: str | None = None) -> None:
        """The run for ``tick`` exists (created now, or earlier by another scheduler). ``last_run`` names it even
        when an older tick fires late (a queued one): overlap looks at the newest run made, not the newest tick."""
        self._write(
            name, revision, "recording a fired tick", forward={"last_fired": clock.iso(tick)}, set_={"last_run": run_id}
        )

    def ran_now(self, name: str, run_id: str) -> None:
        """A manual "run now" run: the next tick's overlap check must see it."""
        with translate_errors("recording a manual run"):
            self.client.hset(self.keys.schedule(name), "last_run", run_id)

    def set_pending(self, name: str, tick: datetime | None, *, revision: str | None = None) -> None:
        if tick is None:
            self._write(name, revision, "queueing a tick", delete=["pending"])
        else:
            self._write(name, revision, "queueing a tick", set_={"pending": clock.iso(tick)})

    def record_skips(
        self,
        name: str,
        ticks: Iterable[datetime],
        reason: SkipReason,
        blocking_run: str | None = None,
        *,
        revision: str | None = None,
    ) -> int:
        """Count ticks that will never run, and keep the newest ones (with why) for inspection."""
        ticks = sorted(ticks)
        if not ticks:
            return 0
        entries = [
            json.dumps({"tick": clock.iso(tick), "reason": reason, "blocking_run": blocking_run})
            for tick in ticks[-SKIP_HISTORY:]
        ]
        skips = {"count": len(ticks), "last": clock.iso(ticks[-1]), "entries": entries, "cap": SKIP_HISTORY}
        self._write(name, revision, "recording skipped ticks", skips=skips)
        return len(ticks)

    def fence_for(self, name: str, revision: str | None) -> Fence:
        """What the scheduler's writes for schedule ``name`` (its state, its tick's run) land under: this
        scheduler's lease, if fenced, and for a schedule created through the API (``revision`` not None), that
        this creation of it still exists."""
        lease = self.fence or Fence()
        if revision is None:
            return lease
        if not revision:  # stored before revisions: that the name still exists
            return dataclasses.replace(lease, within=(self.keys.api_schedules, name))
        return dataclasses.replace(lease, within=(self.keys.api_schedule_revisions, name), revision=revision)

    def _write(
        self,
        name: str,
        revision: str | None,
        doing: str,
        *,
        setnx: dict[str, str] | None = None,
        forward: dict[str, str] | None = None,
        set_: dict[str, str] | None = None,
        delete: list[str] | None = None,
        skips: dict[str, Any] | None = None,
    ) -> None:
        """One ``schedule_write.lua`` call; raises NotLeader when the fence no longer holds."""
        plan = {"setnx": setnx, "forward": forward, "set": set_, "del": delete, "skips": skips}
        fence = self.fence_for(name, revision)
        hash_key, field = fence.within or ("", "")
        keys = [self.keys.schedule(name), self.keys.schedule_skips(name), fence.lease, hash_key]
        args = [fence.holder, field, json.dumps({k: v for k, v in plan.items() if v}), fence.revision]
        with translate_errors(doing):
            written = self._write_script(keys=keys, args=args)
        if written == 0:
            raise NotLeader(f"schedule {name!r}: {doing} dropped, this scheduler lost the lead")

    def skips(self, name: str, limit: int = SKIP_HISTORY) -> list[dict[str, Any]]:
        """The newest skipped ticks, newest first: ``{"tick", "reason", "blocking_run"}``."""
        with translate_errors("reading skipped ticks"):
            raws = self.client.lrange(self.keys.schedule_skips(name), 0, limit - 1)
        return [json.loads(raw) for raw in raws]
