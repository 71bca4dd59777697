"""What a function author gets as ``context``: Lambda's fields plus Backburner's run tools.

It lives in the child process and talks to Redis directly, so progress, logs and checkpoints
reach the API while the attempt is still running.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from typing import Any

import redis

from ..artifacts.writer import ArtifactWriter
from ..errors import ConfigError
from ..keys import Keys
from ..runs import storable
from .output import LOG_LINE_CHARS, LOG_LINES_CAP, RunLog
from .secrets import Redactor
from .task import AttemptContext

__all__ = ["LOG_LINES_CAP", "LOG_LINE_CHARS", "Checkpoint", "Context", "RunLog"]

CHECKPOINT_BYTES_CAP = 1024 * 1024

_clients: dict[str, redis.Redis] = {}
#: Key names per namespace, made once per child (a child serves many attempts).
_keys = functools.lru_cache(maxsize=8)(Keys)


def _client(url: str) -> redis.Redis:
    """One client per child process and URL (children are long-lived and serve many attempts)."""
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
    return _clients[url]


class _RunLogHandler(logging.Handler):
    def __init__(self, log: RunLog) -> None:
        super().__init__()
        self._log = log

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._log.write(self.format(record), level=record.levelname)
        except Exception:  # a log line must never fail the run
            self.handleError(record)


class NoArtifacts:
    """``context.artifacts`` of a synchronous invocation: false, and writing to it says how to keep files."""

    written: tuple[dict[str, Any], ...] = ()

    def __init__(self, function: str) -> None:
        self.function = function

    def __bool__(self) -> bool:
        return False

    def write(self, name: str, data: Any, content_type: str | None = None) -> dict[str, Any]:
        raise ConfigError(
            f"{self.function} is a synchronous function: its calls make no run, so no artifact store keeps "
            f'{name!r}. Name it {self.function}-background (or set "background": True in its config) to write '
            "artifacts, or return the data in the response."
        )


class Checkpoint:
    """A small JSON state that survives retries, so an attempt can resume where the last one stopped."""

    def __init__(self, client: redis.Redis | None, key: str) -> None:
        self._client = client
        self._key = key
        self._memory: Any = None

    def load(self, default: Any = None) -> Any:
        if self._client is None:
            return self._memory if self._memory is not None else default
        raw = self._client.get(self._key)
        return default if raw is None else json.loads(raw)

    def save(self, state: Any) -> None:
        data = json.dumps(state)
        if len(data) > CHECKPOINT_BYTES_CAP:
            raise ValueError(f"checkpoint is {len(data)} bytes; the limit is {CHECKPOINT_BYTES_CAP} bytes")
        if self._client is None:
            self._memory = state
        else:
            self._client.set(self._key, data)

    def clear(self) -> None:
        self._memory = None
        if self._client is not None:
            self._client.delete(self._key)


class Context:
    """The handler's second argument. Attribute names follow AWS Lambda's Python context."""

    def __init__(
        self, info: AttemptContext, redactor: Redactor | None = None, echo: dict[str, Any] | None = None
    ) -> None:
        self.function_name: str = info.function
        self.function_version = "$LATEST"
        self.run_id: str = info.run_id
        self.aws_request_id: str = self.run_id
        self.attempt: int = info.attempt
        self.trigger: str = info.trigger
        self.idempotency_key: str | None = info.idempotency_key
        self.scheduled_for: str | None = info.scheduled_for
        #: The site root the worker serves (kits use it to look other functions up).
        self.site_root: str | None = info.site
        self._deadline: float = info.deadline
        #: Whether ``cancelled`` said True: whatever the handler does after that, the run ends cancelled.
        self.saw_cancel = False
        self._redis = _client(info.redis_url) if info.redis_url is not None else None
        keys = _keys(info.namespace)
        self._keys = keys
        self.run_log = RunLog(
            self._redis,
            keys.logs(self.run_id),
            self.attempt,
            keys.log_count(self.run_id),
            keys.log_dropped(self.run_id),
            rate=info.log_rate,
            burst=info.log_burst,
            redactor=redactor,
            echo=echo,
        )
        self.log = logging.getLogger(f"backburner.function.{self.function_name}")
        self.log.handlers[:] = [_RunLogHandler(self.run_log)]
        if self.log.level != logging.DEBUG:  # setLevel clears every logger's cache: once per child, not per run
            self.log.setLevel(logging.DEBUG)
        self.log.propagate = False
        self.checkpoint = Checkpoint(self._redis, keys.checkpoint(self.run_id))
        self._progress_failed = False
        #: ``context.artifacts.write(name, data)``; a synchronous invocation makes no run to keep files, and its
        #: ``NoArtifacts`` says so when written to.
        self.artifacts: ArtifactWriter | NoArtifacts = NoArtifacts(self.function_name)
        if info.artifacts_url is not None:
            self.artifacts = ArtifactWriter(info.artifacts_url, self.function_name, self.run_id)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))

    def progress(self, done: float, total: float | None = None, message: str | None = None) -> None:
        """Report how far the run is; the API and dashboard show it within a second."""
        if self._redis is None:
            return
        fields: dict[str | bytes, str | float] = {
            "done": json.dumps(done),
            "total": json.dumps(total),
            "message": json.dumps(storable(message) if isinstance(message, str) else message),
            "t": time.time(),
        }
        try:
            self._redis.hset(self._keys.progress(self.run_id), mapping=fields)  # type: ignore[arg-type]
        except redis.RedisError as exc:  # progress is for people watching: never fail the work over it
            if not self._progress_failed:
                self._progress_failed = True
                self.log.warning("progress not saved, Redis is unavailable (%s); the attempt goes on", exc)

    @property
    def cancelled(self) -> bool:
        """True once someone asked to cancel the run; long loops can stop early and cleanly. False while
        Redis cannot be asked (a cancel still reaches the attempt through its worker, which kills it)."""
        if self._redis is None:
            return False
        try:
            asked = bool(self._redis.exists(self._keys.cancel(self.run_id)))
        except redis.RedisError:
            return False
        self.saw_cancel = self.saw_cancel or asked
        return asked

    @property
    def redis(self) -> redis.Redis | None:
        """The run's Redis connection (None outside a worker), for kits that keep state between runs."""
        return self._redis

    @property
    def keys(self) -> Keys:
        """Redis key names of this deployment's namespace."""
        return self._keys

    def spawn(self, function: str, payloads: list[Any], *, ids: list[str] | None = None) -> list[str]:
        """Start one run of background ``function`` per payload, in one round trip (fan-out); returns their ids.

        Pass ``ids`` (``jobs.runs.new_id()``, saved in a checkpoint first) to make it idempotent across retries.
        """
        from .spawn import spawn

        return spawn(self, function, payloads, ids=ids)
