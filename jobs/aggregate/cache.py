"""Remembered responses for conditional requests: per source and URL, the ETag and the body it labelled.

In a worker the entries live in Redis (``<namespace>:aggregate:etag:<hash>``, expiring after ``ttl_s``), so
the next run of the function, on any worker, sends ``If-None-Match`` and reuses the body on a 304. Outside a
worker (scripts, benchmarks) a per-process dictionary stands in. The key hashes the function, the source
name and the full URL, so two functions (possibly with different credentials) never share an entry.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

#: Bodies larger than this are not remembered (a 304 would save little next to the Redis traffic).
MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_TTL_S = 7 * 24 * 3600


@dataclass(frozen=True)
class Cached:
    etag: str
    link: str | None
    body: str


class EtagCache:
    """Get and put remembered responses; Redis when a client is given, else process memory."""

    _memory: dict[str, str] = {}

    def __init__(
        self, client: Any = None, namespace: str = "backburner", scope: str = "", ttl_s: float = DEFAULT_TTL_S
    ):
        self.client = client
        self.prefix = f"{namespace}:aggregate:etag:"
        self.scope = scope
        self.ttl_s = int(ttl_s)

    def key(self, source: str, url: str) -> str:
        digest = hashlib.sha256(f"{self.scope}\n{source}\n{url}".encode()).hexdigest()[:32]
        return self.prefix + digest

    def get(self, source: str, url: str) -> Cached | None:
        key = self.key(source, url)
        raw = self.client.get(key) if self.client is not None else self._memory.get(key)
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return Cached(str(data["etag"]), data.get("link"), str(data["body"]))
        except (ValueError, KeyError, TypeError):
            return None

    def put(self, source: str, url: str, entry: Cached) -> None:
        if len(entry.body) > MAX_BODY_BYTES:
            return
        raw = json.dumps({"etag": entry.etag, "link": entry.link, "body": entry.body})
        key = self.key(source, url)
        if self.client is not None:
            self.client.set(key, raw, ex=self.ttl_s)
        else:
            self._memory[key] = raw


def cache_for(context: Any) -> EtagCache:
    """The cache a run should use: Redis through the run's context when it has one."""
    client = getattr(context, "redis", None) if context is not None else None
    keys = getattr(context, "keys", None)
    namespace = keys.ns if keys is not None else "backburner"
    scope = getattr(context, "function_name", "") if context is not None else ""
    return EtagCache(client, namespace, scope)
