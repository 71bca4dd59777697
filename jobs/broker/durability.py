"""Whether the Redis holding the runs keeps them: its persistence and eviction settings, read at start-up.

A 202 promises that the run is never lost. Redis keeps that promise only if it writes each command to its
append-only file before answering and never evicts a key: a Redis on its default settings (``appendonly no``)
forgets every accepted run when it restarts. The embedded Redis is set up so. For another Redis, the API and
each worker say at start-up what they found, as a warning, and go on: a managed Redis may not let its settings
change, and may refuse ``CONFIG`` (then only what ``INFO`` shows is checked).
"""

from __future__ import annotations

import logging

import redis

from .connection import address


def risks(client: redis.Redis) -> list[str]:
    """What in ``client``'s Redis could lose or drop accepted runs, one sentence each (empty: nothing found).

    Raises ``redis.RedisError`` when Redis does not answer ``INFO``.
    """
    where = f"Redis at {address(client)}"
    persistence = client.info("persistence")
    found = []
    if not int(persistence.get("aof_enabled", 0)):
        found.append(
            f"{where} keeps no append-only file (appendonly no): a restart loses the runs accepted since its last "
            "snapshot (if it takes any), although each was answered 202. Set `appendonly yes` and "
            "`appendfsync always`."
        )
    else:
        fsync = _config(client, "appendfsync")
        if fsync not in (None, "always"):
            found.append(
                f"{where} syncs its append-only file to disk with `appendfsync {fsync}`: if its machine fails, "
                "the runs accepted in the last second or so are lost, although each was answered 202. Set "
                "`appendfsync always`."
            )
    policy = str(client.info("memory").get("maxmemory_policy", "noeviction"))
    if policy != "noeviction":
        found.append(
            f"{where} evicts keys when it runs out of memory (maxmemory-policy {policy}): it may drop queued "
            "runs, their records, or the marks that stop a run from starting twice. Set "
            "`maxmemory-policy noeviction`, and a `maxmemory` that leaves room."
        )
    return found


def _config(client: redis.Redis, name: str) -> str | None:
    """A setting, or None where ``CONFIG`` is refused (renamed, or not allowed to this user)."""
    try:
        value = client.config_get(name).get(name)
    except redis.ResponseError:  # a NoPermissionError too
        return None
    return None if value is None else str(value)


def warn_of_risks(client: redis.Redis, log: logging.Logger) -> list[str]:
    """Log each of ``risks`` as a warning (nothing if Redis does not answer: the caller's own wait says so)."""
    try:
        found = risks(client)
    except redis.RedisError as exc:
        log.debug("Redis at %s: its persistence settings could not be read (%s)", address(client), exc)
        return []
    for risk in found:
        log.warning("%s", risk)
    return found
