"""Redis key names, in one place, so every process agrees on the layout; and ``text``, for reading names back."""

from __future__ import annotations

from typing import Any


def text(value: Any) -> str:
    """A Redis reply as text (clients here do not decode responses, so names come back as bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


class Keys:
    """Key names under one namespace (``BACKBURNER_NAMESPACE``, default ``backburner``).

    Run ids are ULIDs, so lexicographic sorted sets (all scores 0) double as time indexes.
    """

    def __init__(self, namespace: str) -> None:
        self.ns = namespace
        self.runs = f"{namespace}:index:runs"
        self.active = f"{namespace}:index:active"
        self.workers = f"{namespace}:workers"
        self.reaper_lock = f"{namespace}:lock:reaper"
        self.scheduler_lease = f"{namespace}:lock:scheduler"
        self.retention_lock = f"{namespace}:lock:retention"
        self.outbox_due = f"{namespace}:outbox:due"
        self.webhook_secret = f"{namespace}:webhooks:secret"
        #: Prometheus counters and duration histograms kept by ``jobs.metrics`` (one hash, read at scrape time).
        self.metrics = f"{namespace}:metrics"
        #: The dashboard's session-signing secret, made once and shared by every API replica.
        self.dashboard_secret = f"{namespace}:dashboard:secret"
        #: Delayed runs by due time (ms): swept by every worker, a due run becomes queued (``jobs.delayed``).
        self.delayed = f"{namespace}:index:delayed"
        #: Schedules created through the API: name -> JSON spec; and a counter bumped by every change of them.
        self.api_schedules = f"{namespace}:schedules:api"
        self.api_schedule_revisions = f"{namespace}:schedules:api:revisions"  # name -> revision, read by fences
        self.schedules_version = f"{namespace}:schedules:version"

    def run(self, run_id: str) -> str:
        return f"{self.ns}:run:{run_id}"

    def event(self, run_id: str) -> str:
        return f"{self.ns}:run:{run_id}:event"

    def progress(self, run_id: str) -> str:
        return f"{self.ns}:run:{run_id}:progress"

    def logs(self, run_id: str) -> str:
        return f"{self.ns}:run:{run_id}:logs"

    def log_count(self, run_id: str) -> str:
        """How many log lines the run ever wrote (the capped list drops the oldest), so line numbers stay stable."""
        return f"{self.ns}:run:{run_id}:logs:n"

    def log_dropped(self, run_id: str) -> str:
        """How many log lines the run's output rate cap dropped (``jobs.execution.output``)."""
        return f"{self.ns}:run:{run_id}:logs:dropped"

    def result(self, run_id: str) -> str:
        """A result too big to keep in the run record, which listings read (``jobs.runs.RESULT_INLINE_BYTES``)."""
        return f"{self.ns}:run:{run_id}:result"

    def checkpoint(self, run_id: str) -> str:
        return f"{self.ns}:run:{run_id}:checkpoint"

    def cancel(self, run_id: str) -> str:
        return f"{self.ns}:run:{run_id}:cancel"

    def lost(self, run_id: str, token: str) -> str:
        """Set when the attempt holding ``token`` was given up for lost, so that its worker, if it was only
        stalled, stops it rather than run it beside the attempt that resumed the run."""
        return f"{self.ns}:run:{run_id}:lost:{token}"

    def children(self, run_id: str) -> str:
        """Ids of the runs this run started (``context.spawn``), so cancelling it cancels them too."""
        return f"{self.ns}:run:{run_id}:children"

    def concurrency(self, function: str) -> str:
        """The runs of ``function`` holding one of its ``concurrency`` slots (a sorted set of run ids)."""
        return f"{self.ns}:concurrency:{function}"

    def waiting(self, function: str) -> str:
        """Ids of runs of ``function`` waiting for a concurrency slot, oldest first; a freed slot wakes one."""
        return f"{self.ns}:concurrency:{function}:waiting"

    def function_runs(self, function: str) -> str:
        return f"{self.ns}:index:function:{function}"

    def idempotency(self, function: str, surface: str, key: str) -> str:
        """The run an ``Idempotency-Key`` made, per function and per surface (``http``: the public Netlify URL,
        ``api``: the management API, ``schedule``: cron ticks), so one surface can never claim another's keys."""
        return f"{self.ns}:idempotency:{function}:{surface}:{key}"

    def session(self, digest: str) -> str:
        """A logged-in dashboard session, under the SHA-256 of its cookie (Redis never holds a usable cookie)."""
        return f"{self.ns}:session:{digest}"

    def auth_failures(self, address: str) -> str:
        """Failed authentication attempts from one client address (a counter that expires with its window)."""
        return f"{self.ns}:authfail:{address}"

    def outbox_entry(self, delivery_id: str) -> str:
        """One pending webhook delivery (a hash); ``outbox_entry("")`` is the prefix the claim script uses."""
        return f"{self.ns}:outbox:msg:{delivery_id}"

    def webhooks_gone(self, function: str) -> str:
        """Webhook URLs of ``function`` that answered 410 Gone and are no longer sent to."""
        return f"{self.ns}:webhooks:gone:{function}"

    def schedule(self, name: str) -> str:
        """A schedule's state hash (paused, handled_until, last_run, pending, skipped...)."""
        return f"{self.ns}:schedule:{name}"

    def schedule_skips(self, name: str) -> str:
        """The newest skipped or missed ticks of a schedule (a capped list, newest first)."""
        return f"{self.ns}:schedule:{name}:skips"

    def schedule_ticks(self, name: str) -> str:
        """The runs of a schedule's ticks (run id scored by tick, in ms): what backfill skips, for good."""
        return f"{self.ns}:schedule:{name}:ticks"

    def run_keys(self, run_id: str) -> list[str]:
        """Every key that belongs to one run (for retention)."""
        return [
            self.run(run_id),
            self.event(run_id),
            self.progress(run_id),
            self.logs(run_id),
            self.log_count(run_id),
            self.log_dropped(run_id),
            self.result(run_id),
            self.checkpoint(run_id),
            self.cancel(run_id),
            self.children(run_id),
        ]
