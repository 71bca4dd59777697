"""Runs started from inside a run (``context.spawn``): fan-out children are ordinary runs of a background
function, created in one Redis round trip and processed by every worker, each under its own limit and retries.

The child process already has a Redis connection and the namespace, which is all a ``RunStore`` needs; the
child runs' limits come from the site, found from the running function's file (the nearest ``netlify.toml``
above it), else ``BACKBURNER_SITE``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..broker import build_broker
from ..errors import InvalidInput
from ..event import payload_event
from ..lifecycle import Lifecycle, new_run
from ..runs import Progress, Run, is_run_id, new_id, readable
from ..settings import Settings
from ..site import CONFIG_FILE, Site, load_site
from ..store import RunStore
from ..wiring import default_hooks

#: The header a child run's event carries, naming the run that started it.
PARENT_HEADER = "x-backburner-parent"

_stores: dict[int, RunStore] = {}


def site_root(function_name: str) -> Path:
    """The site of the running function: the nearest folder above its file with a netlify.toml."""
    module = sys.modules.get("netlify_function_" + function_name.replace("-", "_"))  # named by jobs.execution.child
    path = getattr(module, "__file__", None)
    if path:
        for parent in Path(path).resolve().parents:
            if (parent / CONFIG_FILE).is_file():
                return parent
    return Path(os.environ.get("BACKBURNER_SITE", ".")).resolve()


def _store(context: Any) -> RunStore:
    client = context.redis
    if client is None:
        raise InvalidInput("Starting runs needs a run executed by a worker (with Redis); this one is not persisted.")
    store = _stores.get(id(client))
    if store is None:
        settings = Settings(namespace=context.keys.ns)
        store = _stores[id(client)] = RunStore(client, build_broker(settings, client), context.keys)
    return store


def spawn(context: Any, function: str, payloads: Sequence[Any], *, ids: Sequence[str] | None = None) -> list[str]:
    """Create one run of ``function`` per payload (trigger ``api``) and return their ids.

    With ``ids`` it is idempotent: runs that already exist are left alone. A parent saves the ids in its
    checkpoint first, then spawns, so a retried parent neither loses nor duplicates a child.
    """
    ids = list(ids) if ids is not None else [new_id() for _ in payloads]
    if len(ids) != len(payloads):
        raise InvalidInput(f"spawn got {len(payloads)} payloads but {len(ids)} ids.")
    malformed = [run_id for run_id in ids if not isinstance(run_id, str) or not is_run_id(run_id)]
    if malformed:
        raise InvalidInput(f"spawn ids must be run ids made by jobs.runs.new_id(); {malformed[0]!r} is not one.")
    root = getattr(context, "site_root", None)
    site: Site = load_site(Path(root) if root else site_root(context.function_name))
    target = site.get(function)
    if not target.background:
        raise InvalidInput(f"{function!r} is not a background function; only those can be started as child runs.")
    store = _store(context)
    pipe = store.client.pipeline(transaction=False)
    for run_id in ids:
        pipe.exists(store.keys.run(run_id))
    # Recorded before they exist, so cancelling this run finds them (jobs.lifecycle.Lifecycle.cancel).
    pipe.sadd(store.keys.children(context.run_id), *ids)
    *exists, _ = pipe.execute()
    items: list[tuple[Run, dict[str, Any]]] = []
    for run_id, payload, found in zip(ids, payloads, exists, strict=True):
        if found:
            continue
        run = new_run(target, "api")
        run.id = run_id
        items.append((run, payload_event(function, payload, headers={PARENT_HEADER: context.run_id})))
    if items:
        store.create_many(items)
        if store.cancel_requested(context.run_id):  # cancelled meanwhile: the cancel may have missed these
            hooks = default_hooks(Settings(namespace=store.keys.ns), store.client, site.functions.get)
            Lifecycle(store, hooks).cancel_children(context.run_id)
    return ids


def runs(context: Any, ids: Sequence[str]) -> list[Run | None]:
    """The runs with ``ids`` and their live progress, in one round trip (None for a run that is gone)."""
    store = _store(context)
    pipe = store.client.pipeline(transaction=False)
    for run_id in ids:
        pipe.get(store.keys.run(run_id))
        pipe.hgetall(store.keys.progress(run_id))
    answers = pipe.execute()
    found: list[Run | None] = []
    for run_id, raw, progress in zip(ids, answers[::2], answers[1::2], strict=True):
        run = readable(raw, run_id) if raw is not None else None
        if run is None:
            found.append(None)
            continue
        if progress:
            run.progress = Progress.from_hash(progress)
        found.append(run)
    return found
