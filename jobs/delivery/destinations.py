"""Routing a finished run to its webhooks: ``on_success`` when it succeeds, ``on_failure`` when it fails for good.

``DestinationsHook.on_terminal`` runs inside the transaction that makes the run final, which happens exactly
once per run; it only queues outbox entries there (no network), so each webhook gets exactly one event per
run, durably, whatever crashes afterwards. The outbox (``jobs.delivery.outbox``) does the sending.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import clock
from ..errors import ConfigError
from ..hooks import RunHook
from ..keys import Keys
from ..runs import Run
from ..settings import Settings
from ..site import CONFIG_FILE, Function, Site, load_site
from .outbox import Entry, enqueue

if TYPE_CHECKING:
    from ..runtime import Runtime

log = logging.getLogger("backburner.destinations")

EVENTS = {"succeeded": "run.succeeded", "failed": "run.failed"}

FunctionLookup = Callable[[str], Function | None]


class SiteFunctions:
    """Looks functions up in the site, loading it on first use and again when netlify.toml changes, a name
    is unknown, or the copy is ``max_age_s`` old (inline configs live in function files). Thread-safe;
    ``None`` for a function the site does not have."""

    def __init__(self, root: Path, max_age_s: float = 5.0) -> None:
        self.root = root
        self._config = str(root / CONFIG_FILE)
        self.max_age_s = max_age_s
        self._site: Site | None = None
        self._stamp: float | None = None
        self._loaded = 0.0
        self._lock = threading.Lock()

    def _config_stamp(self) -> float | None:
        try:
            return os.stat(self._config).st_mtime
        except OSError:
            return None

    def __call__(self, name: str) -> Function | None:
        with self._lock:
            stamp, now = self._config_stamp(), time.monotonic()
            stale = self._site is None or stamp != self._stamp or now - self._loaded > self.max_age_s
            if stale or (self._site is not None and name not in self._site.functions):
                self._site, self._stamp, self._loaded = load_site(self.root), stamp, now
            assert self._site is not None
            return self._site.functions.get(name)


def has_destinations(site: Site) -> list[str]:
    """Names of the functions that send webhooks."""
    return [f.name for f in site.functions.values() if f.on_success or f.on_failure]


def check_secret(settings: Settings, site: Site) -> None:
    """Outside `dev`, webhooks need a signing secret the receivers know; say so at start-up, not at 3 a.m."""
    senders = has_destinations(site)
    if senders and not settings.webhook_secret and not settings.dev:
        shown = ", ".join(senders[:5]) + (" ..." if len(senders) > 5 else "")
        raise ConfigError(
            f"BACKBURNER_WEBHOOK_SECRET is not set, but functions send webhooks (on_success/on_failure: {shown}). "
            "Receivers verify signatures with this secret: export BACKBURNER_WEBHOOK_SECRET=whsec_<base64 of "
            "24-64 random bytes> (e.g. python -c \"import base64,os;print('whsec_'+base64.b64encode("
            'os.urandom(32)).decode())") and give the same value to every receiver.'
        )


class DestinationsHook(RunHook):
    """Queues one outbox entry per webhook URL of the run's function, inside the final transaction."""

    def __init__(self, keys: Keys, functions: FunctionLookup) -> None:
        self.keys = keys
        self.functions = functions

    def on_terminal(self, run: Run, pipe: Any) -> None:
        event = EVENTS.get(run.status)
        if event is None:  # cancelled: nobody asked to be told
            return
        try:
            function = self.functions(run.function)
        except Exception:  # a broken site must not stop the run from being recorded
            log.exception("run %s: cannot read the site to route the run to its webhooks", run.id)
            return
        if function is None:
            return
        urls = function.on_success if run.status == "succeeded" else function.on_failure
        if not urls:
            return
        snapshot = run.public()
        snapshot.pop("deliveries", None)  # recorded on the run as they happen; not part of the event
        for n, url in enumerate(urls):
            entry = Entry(
                id=f"msg_{run.id}_{n}",  # the webhook-id: stable across retries, unique per run and URL
                run_id=run.id,
                function=run.function,
                url=url,
                event=event,
                occurred_at=run.finished_at or clock.iso(clock.now()),
                run=snapshot,
            )
            enqueue(pipe, self.keys, entry)


def destination_hooks(settings: Settings) -> list[RunHook]:
    """The hook every process installs (``jobs.runtime.default_hooks``); the site is read on first use."""
    return [DestinationsHook(Keys(settings.namespace), SiteFunctions(settings.site))]


def event_payload(entry: Entry, settings: Settings, runtime: Runtime) -> dict[str, Any]:
    """The webhook's ``data``: the run record as it was when it finished, with artifact links made fresh for
    this attempt (a retry hours later still carries links that work)."""
    from ..artifacts.stores import linked_artifacts, run_store
    from ..errors import BackburnerError

    data = dict(entry.run)
    if data.get("artifacts"):
        run = Run.model_validate(entry.run)
        try:
            data["artifacts"] = linked_artifacts(run, run_store(settings, runtime.function, run), settings)
        except BackburnerError as exc:  # cannot sign links now: send the API's download URLs instead
            log.warning("run %s: no presigned artifact links (%s); sending API links", run.id, exc.message)
            base = settings.url.rstrip("/")
            data["artifacts"] = [
                {**a, "url": base + str(a.get("url") or ""), "expires_at": None} for a in data["artifacts"]
            ]
    return data
