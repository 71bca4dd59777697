"""Every schedule, whatever its source: netlify.toml's (read from the site) and the API's (kept in Redis).

Schedules created through the API live in one hash (name -> JSON spec) beside a counter that every create
and delete bumps, so a scheduler notices a change with one GET a second and picks the new schedule up
without a restart. A name is unique across both sources; should netlify.toml later gain a schedule of a
name the API already uses, the file's wins and the API's is left out until it is deleted.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import redis

from .. import clock
from ..errors import Conflict, InvalidInput, PayloadTooLarge, ScheduleNotFound, clipped
from ..keys import Keys
from ..site import Function, Site
from ..site.model import ScheduleSpec
from ..site.schedules import check_cron, check_name, check_payload
from ..store import translate_errors
from .state import ScheduleState


def _spec(raw: Any) -> ScheduleSpec:
    data = json.loads(raw)
    return ScheduleSpec(
        data["name"],
        data["function"],
        data["cron"],
        data.get("timezone", "UTC"),
        data.get("payload") or {},
        "api",
        data.get("revision", ""),  # none in schedules stored before revisions: those are fenced by name only
    )


def describe(spec: ScheduleSpec) -> dict[str, Any]:
    """What a schedule is (not its state): the part of a listing both sources share."""
    return {
        "name": spec.name,
        "function": spec.function,
        "schedule": spec.cron,
        "timezone": spec.timezone,
        "payload": dict(spec.payload),
        "source": spec.source,
    }


class Schedules:
    """Reads every schedule and creates or deletes the API's; ``site()`` gives the current site."""

    def __init__(self, client: redis.Redis, keys: Keys, site: Callable[[], Site]) -> None:
        self.client = client
        self.keys = keys
        self.site = site

    def version(self) -> int:
        """Changes whenever a schedule is created or deleted through the API."""
        with translate_errors("reading the schedules' version"):
            return int(self.client.get(self.keys.schedules_version) or 0)

    def from_api(self) -> list[ScheduleSpec]:
        with translate_errors("reading schedules"):
            raws = self.client.hgetall(self.keys.api_schedules)
        return sorted((_spec(raw) for raw in raws.values()), key=lambda spec: spec.name)

    def all(self, api: list[ScheduleSpec] | None = None) -> list[ScheduleSpec]:
        """netlify.toml's schedules, then the API's (in name order), without API ones a file name shadows."""
        files = self.site().schedules
        taken = {spec.name for spec in files}
        return files + [spec for spec in (self.from_api() if api is None else api) if spec.name not in taken]

    def get(self, name: str) -> ScheduleSpec:
        """The schedule called ``name``; raises ScheduleNotFound (404) naming the ones there are."""
        for spec in self.site().schedules:
            if spec.name == name:
                return spec
        with translate_errors("reading a schedule"):
            raw = self.client.hget(self.keys.api_schedules, name)
        if raw is not None:
            return _spec(raw)
        site = self.site()
        function = site.functions.get(name)
        if function is not None and not function.schedule:
            raise ScheduleNotFound(name, function=True)
        raise ScheduleNotFound(name, [spec.name for spec in self.all()])

    def function(self, spec: ScheduleSpec) -> Function:
        """The schedule's function in the current site (FunctionNotFound if it was removed since)."""
        return self.site().get(spec.function)

    def create(
        self, name: str, function: str, cron: str, timezone: str, payload: Mapping[str, Any], now: datetime
    ) -> ScheduleSpec:
        """Check and store a schedule (it starts at ``now``: no run for any tick before it existed).

        Raises InvalidInput (a bad name, cron, zone or payload), FunctionNotFound, PayloadTooLarge (over the
        function's body limit) or Conflict (the name is taken, by netlify.toml or the API).
        """
        try:
            check_name(name)
            cron, timezone = check_cron(cron, timezone)
            body = check_payload(payload)
        except ValueError as error:
            raise InvalidInput(f"Schedule {clipped(name)!r}: {error}.") from None
        site = self.site()
        target = site.get(function)
        limit = target.limits("schedule").body_limit
        size = len(json.dumps(body).encode())
        if size > limit:
            raise PayloadTooLarge(f"The payload is {size} bytes; function {function!r} accepts at most {limit} bytes.")
        if any(spec.name == name for spec in site.schedules):
            raise Conflict(f"Schedule {name!r} is defined in netlify.toml; choose another name.")
        spec = ScheduleSpec(name, function, cron, timezone, body, "api", uuid.uuid4().hex)
        record = json.dumps(
            {"name": name, "function": function, "cron": cron, "timezone": timezone, "payload": body,
             "created_at": clock.iso(now), "revision": spec.revision}
        )  # fmt: skip
        state = ScheduleState(self.client, self.keys)

        def write(pipe: Any) -> None:
            if pipe.hexists(self.keys.api_schedules, name):
                raise Conflict(f"Schedule {name!r} already exists; delete it first (DELETE /api/schedules/{name}).")
            pipe.multi()
            pipe.hset(self.keys.api_schedules, name, record)
            pipe.hset(self.keys.api_schedule_revisions, name, spec.revision)
            pipe.delete(*state.keys_of(name))
            pipe.hset(self.keys.schedule(name), "handled_until", clock.iso(now))
            pipe.incr(self.keys.schedules_version)

        with translate_errors("creating a schedule"):
            self.client.transaction(write, self.keys.api_schedules)
        return spec

    def delete(self, name: str) -> None:
        """Remove a schedule created through the API, with its state; Conflict for one from netlify.toml.

        One that netlify.toml shadows (the file gained a schedule of its name after it was created) can be
        removed too, so the conflict can be settled; its state is the file schedule's then, and stays."""
        spec = self.get(name)
        with translate_errors("deleting a schedule"):
            shadowed = spec.source == "file" and bool(self.client.hexists(self.keys.api_schedules, name))
        if spec.source == "file" and not shadowed:
            raise Conflict(
                f"Schedule {name!r} comes from netlify.toml; remove it there (the scheduler follows the edit)."
            )
        state = ScheduleState(self.client, self.keys)
        with translate_errors("deleting a schedule"), self.client.pipeline() as pipe:
            pipe.hdel(self.keys.api_schedules, name)
            pipe.hdel(self.keys.api_schedule_revisions, name)
            if not shadowed:
                pipe.delete(*state.keys_of(name))
            pipe.incr(self.keys.schedules_version)
            removed = pipe.execute()[0]
        if not removed:  # deleted by someone else meanwhile
            raise ScheduleNotFound(name, [spec.name for spec in self.all()])
