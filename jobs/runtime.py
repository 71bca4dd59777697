"""The parts every process shares, opened once from settings: Redis, broker, store, site, lifecycle."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import redis

from .broker import RunBroker, build_broker, connect
from .hooks import RunHook
from .keys import Keys
from .lifecycle import Lifecycle
from .settings import Settings
from .site import Function, Site, load_site
from .store import RunStore


@dataclass
class Runtime:
    settings: Settings
    client: redis.Redis
    broker: RunBroker
    store: RunStore
    lifecycle: Lifecycle
    site: Site
    hooks: list[RunHook] = field(default_factory=list)
    _loaded_at: float = field(default_factory=time.monotonic)

    @classmethod
    def open(cls, settings: Settings, *, hooks: Sequence[RunHook] = (), site: Site | None = None) -> Runtime:
        client = connect(settings)
        broker = build_broker(settings, client)
        store = RunStore(client, broker, Keys(settings.namespace), idempotency_ttl=settings.idempotency_ttl)
        all_hooks = [*default_hooks(settings, client), *hooks]
        lifecycle = Lifecycle(store, all_hooks)
        return cls(settings, client, broker, store, lifecycle, site or load_site(settings.site), all_hooks)

    def function(self, name: str) -> Function:
        """Look a function up, re-reading the site if it is new (so `dev` sees added files).

        Re-reading happens at most once a second, so a flood of unknown names costs no disk work.
        """
        if name not in self.site.functions and time.monotonic() - self._loaded_at > 1.0:
            self.refresh_site()
        return self.site.get(name)

    def refresh_site(self) -> Site:
        """Re-read netlify.toml and the functions folder (listings should show what is on disk)."""
        self.site = load_site(self.settings.site)
        self._loaded_at = time.monotonic()
        return self.site

    def close(self) -> None:
        self.broker.close()
        self.client.close()


def default_hooks(settings: Settings, client: redis.Redis | None = None) -> list[RunHook]:
    """Hooks every deployment gets: destinations, and the metrics counters (``jobs.metrics``)."""
    from .delivery.destinations import destination_hooks
    from .metrics import MetricsHook

    return [*destination_hooks(settings), MetricsHook(Keys(settings.namespace), client)]
