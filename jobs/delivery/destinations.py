"""Routing a finished run to its webhooks: ``on_success`` when it succeeds, ``on_failure`` when it fails for good.

``DestinationsHook.on_terminal`` runs inside the transaction that makes the run final, which happens exactly
once per run; it only queues outbox entries there (no network), so each webhook gets exactly one event per
run, durably, whatever crashes afterwards. The outbox (``jobs.delivery.outbox``) does the sending.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .. import clock
from ..errors import ConfigError
from ..hooks import RunHook
from ..keys import Keys
from ..runs import Run
from ..settings import Settings
from ..site import Function, Site
from ..writes import Writes
from .outbox import Entry, enqueue
from .webhooks import signer

log = logging.getLogger("backburner.destinations")

EVENTS = {"succeeded": "run.succeeded", "failed": "run.failed"}

FunctionLookup = Callable[[str], Function | None]


def has_destinations(site: Site) -> list[str]:
    """Names of the functions that send webhooks."""
    return [f.name for f in site.functions.values() if f.on_success or f.on_failure]


def check_secret(settings: Settings, site: Site) -> None:
    """Outside `dev`, webhooks need a signing secret the receivers know, in the Standard Webhooks form; say so
    at start-up, not at 3 a.m."""
    senders = has_destinations(site)
    if senders and not settings.webhook_secret and not settings.dev:
        shown = ", ".join(senders[:5]) + (" ..." if len(senders) > 5 else "")
        raise ConfigError(
            f"BACKBURNER_WEBHOOK_SECRET is not set, but functions send webhooks (on_success/on_failure: {shown}). "
            "Receivers verify signatures with this secret: export BACKBURNER_WEBHOOK_SECRET=whsec_<base64 of "
            "24-64 random bytes> (e.g. python -c \"import base64,os;print('whsec_'+base64.b64encode("
            'os.urandom(32)).decode())") and give the same value to every receiver.'
        )
    if senders and settings.webhook_secret:
        try:
            signer(settings.webhook_secret)  # a malformed one is a ConfigError now, not a failed delivery later
        except ConfigError as exc:  # say where it was set, as other settings' errors do (never its value)
            raise ConfigError(f"BACKBURNER_WEBHOOK_SECRET: {exc.message}") from None


class DestinationsHook(RunHook):
    """Queues one outbox entry per webhook URL of the run's function, inside the final transaction."""

    def __init__(self, keys: Keys, functions: FunctionLookup) -> None:
        self.keys = keys
        self.functions = functions

    def on_terminal(self, run: Run, pipe: Writes) -> None:
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
        if run.result is not None:
            run.measure_result()  # as the record it is written with will say
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
