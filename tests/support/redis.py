"""A real redis-server for the tests, spawned by the project's own launcher on a free port."""

from __future__ import annotations

from backburner.redis_server import RedisServer

__all__ = ["RedisServer"]
