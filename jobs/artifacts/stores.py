"""A run's artifacts seen from outside the run: which store holds them, links to them, removing them.

Shared by the child (writing), the API (downloads), the outbox (links in webhook payloads) and retention, so
they all agree on where a run's files are: the function's ``artifacts`` store if it has one, else
``BACKBURNER_ARTIFACTS`` (default ``<data dir>/artifacts``), when the attempt runs. The worker records that
store on the run (``Run.artifact_store``), and readers go there, whatever the configuration says later.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from .. import clock
from ..runs import Run
from ..settings import Settings
from ..site import Function
from . import ArtifactStore, open_store
from .s3 import S3Store, endpoint_url

_stores: dict[tuple[str, str | None], ArtifactStore] = {}
_lock = threading.Lock()


def download_path(run_id: str, name: str) -> str:
    """The API path that downloads one artifact of a run (the ``url`` of an ArtifactRef)."""
    return f"/api/runs/{quote(run_id, safe='')}/artifacts/{quote(name, safe='/')}"


def store_for(url: str) -> ArtifactStore:
    """The store at ``url``, made once per process: an S3 client costs a few hundred milliseconds to build.

    S3 goes to ``AWS_ENDPOINT_URL`` when set (MinIO, R2, moto), else to AWS.
    """
    endpoint = endpoint_url()
    with _lock:
        store = _stores.get((url, endpoint))
        if store is None:
            store = _stores[(url, endpoint)] = open_store(url, endpoint_url=endpoint)
        return store


def store_url(settings: Settings, function: Function | None) -> str:
    """Where ``function``'s artifacts go (``None``: a function no longer in the site; the default store)."""
    return (function.artifacts if function is not None else None) or settings.artifacts_url


def run_store(settings: Settings, lookup: Callable[[str], Function | None], run: Run) -> ArtifactStore:
    """The store holding ``run``'s artifacts: the one its attempts wrote to (recorded on the run), else, for
    runs recorded before that was, where the function's artifacts go now (``lookup`` finds a function in the
    current site; None: gone)."""
    return store_for(run.artifact_store or store_url(settings, lookup(run.function)))


def run_prefix(run: Run) -> str:
    """The folder of a run in its store, ``runs/<function>/<run id>/``."""
    return f"runs/{run.function}/{run.id}/"


def linked_artifacts(run: Run, store: ArtifactStore, settings: Settings) -> list[dict[str, Any]]:
    """The run's artifacts with links a webhook consumer can fetch.

    On S3 the link is a presigned GET that expires after ``artifact_link_expiry`` (``expires_at`` says
    when); on a local store it is the API's download URL under ``BACKBURNER_URL`` (which needs the token).
    """
    linked = []
    expires = int(settings.artifact_link_expiry)
    for ref in run.artifacts:
        entry = ref.model_dump(mode="json")
        if isinstance(store, S3Store):
            entry["url"] = store.presigned_url(run_prefix(run) + ref.name, expires, content_type=ref.content_type)
            entry["expires_at"] = clock.iso(clock.now() + timedelta(seconds=min(expires, 7 * 24 * 3600)))
        else:
            entry["url"] = settings.url.rstrip("/") + download_path(run.id, ref.name)
            entry["expires_at"] = None
        linked.append(entry)
    return linked
