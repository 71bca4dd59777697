"""A real redis-server for the tests, spawned by the project's own launcher on a free port."""

from __future__ import annotations

from backburner import redis_server


class RedisServer(redis_server.RedisServer):
    """The launcher's embedded Redis, plus what only the durability tests need."""

    def restart(self, *, kill: bool = False) -> None:
        """Stop (``kill``: SIGKILL, as in a crash) and start again on the same port and data."""
        self.stop(kill=kill)
        self.start()


__all__ = ["RedisServer"]
