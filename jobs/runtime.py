"""The parts every process shares, opened once from settings: Redis, broker, store, lifecycle and the site.

``Runtime.open`` installs no hooks of its own: a process's wiring (``jobs.wiring.open_runtime``) adds the
default ones (webhook routing, metrics), so the core never depends on what reacts to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis

from .broker import RunBroker, build_broker, connect
from .hooks import RunHook
from .keys import Keys
from .lifecycle import Lifecycle
from .settings import Settings
from .site import Function, Site
from .site.snapshot import SiteSnapshot
from .store import RunStore


@dataclass
class Runtime:
    settings: Settings
    client: redis.Redis
    broker: RunBroker
    store: RunStore
    lifecycle: Lifecycle
    #: The site as it is on disk, read again within a second of an edit (``jobs.site.snapshot``).
    sites: SiteSnapshot

    @classmethod
    def open(cls, settings: Settings, *, hooks: Sequence[RunHook] = (), site: Site | None = None) -> Runtime:
        """Connect and load the site (raises ConfigError if it does not load); ``site`` skips the first read."""
        sites = SiteSnapshot(settings.site, site=site)
        client = connect(settings)
        broker = build_broker(settings, client)
        store = RunStore(client, broker, Keys(settings.namespace), idempotency_ttl=settings.idempotency_ttl)
        return cls(settings, client, broker, store, Lifecycle(store, hooks), sites)

    @property
    def site(self) -> Site:
        return self.sites.site

    @property
    def hooks(self) -> list[RunHook]:
        return self.lifecycle.hooks

    def use(self, *hooks: RunHook) -> None:
        """Add hooks; they see every transition from now on."""
        self.lifecycle.hooks.extend(hooks)

    def function(self, name: str) -> Function:
        """The function called ``name`` in the current site; raises FunctionNotFound (404)."""
        return self.sites.function(name)

    def close(self) -> None:
        self.broker.close()
        self.client.close()
