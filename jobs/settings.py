"""One typed settings object, read from the environment when a process starts (never at import time)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError

#: In `dev`, webhooks may reach receivers on this machine (the first thing anyone tries); private and
#: link-local addresses still need BACKBURNER_WEBHOOK_ALLOW there, as everywhere else.
DEV_WEBHOOK_ALLOW = ("127.0.0.0/8", "::1")
#: Settings whose values never appear in messages.
_SECRET_FIELDS = frozenset({"api_token", "webhook_secret", "redis_url"})


class Settings(BaseSettings):
    """Everything a Backburner process needs to know about its surroundings.

    Variables use the ``BACKBURNER_`` prefix, except the conventional ``REDIS_URL`` and the AWS ones.
    Time settings are in seconds; tests compress them instead of sleeping.
    """

    model_config = SettingsConfigDict(env_prefix="BACKBURNER_", extra="ignore", frozen=True)

    redis_url: str | None = Field(default=None, validation_alias=AliasChoices("REDIS_URL", "BACKBURNER_REDIS_URL"))
    site: Path = Path(".")
    data_dir: Path | None = None
    artifacts: str | None = None
    api_token: str | None = None
    webhook_secret: str | None = None
    webhook_allow: str = ""
    dev: bool = False
    url: str = "http://127.0.0.1:8888"

    #: Redis key prefix and Dramatiq namespace/queue, so several deployments can share one Redis.
    namespace: str = "backburner"
    #: Seconds between worker heartbeats; a worker silent for ``worker_timeout`` is dead and its runs resume.
    heartbeat_interval: float = 2.0
    worker_timeout: float = 30.0
    #: Seconds between reaper sweeps (one worker at a time does the sweep).
    reap_interval: float = 5.0
    #: A retry whose due time passed this long ago without starting is re-dispatched (e.g. after a Redis restart).
    retry_grace: float = 30.0
    #: Each worker's timer starts delayed runs and retries at their due time, nudged by the writes that add
    #: them (``jobs.worker.timer``); without a nudge it still looks this often (the safety net).
    delayed_interval: float = 1.0
    #: Seconds an ``Idempotency-Key`` keeps returning the same run.
    idempotency_ttl: float = 24 * 3600
    #: Warm child processes kept per worker process; 0 means one per worker thread.
    pool_size: int = 0
    #: A warm child is replaced after this many runs, so leaks in user code stay bounded.
    child_max_runs: int = 1000
    #: Seconds the scheduler leader's lease lasts; a dead leader is replaced within about 4/3 of it.
    scheduler_lease_ttl: float = 5.0
    #: A cron tick at most this many seconds late is on time (a leader failover, a slow Redis); an older
    #: one was missed while no scheduler ran, and the schedule's ``catchup`` policy decides about it.
    schedule_grace: float = 10.0
    #: TESTS AND BENCHMARKS ONLY: function name -> cron expression with a leading seconds field
    #: (``{"tick": "* * * * * *"}``), replacing that function's schedule in the scheduler. Netlify's
    #: dialect has no seconds, so netlify.toml cannot say this; never set it in production.
    test_schedules: dict[str, str] = Field(default_factory=dict)

    #: Webhook delivery: the timeout of each connect, read and write of an attempt, the retry delays after
    #: attempt 1, 2, ... (comma-separated durations; empty means the built-in schedule of about 3.6 hours), and
    #: parallel sends per worker.
    webhook_timeout: float = Field(default=15.0, gt=0, allow_inf_nan=False)
    webhook_retries: str = ""
    webhook_concurrency: int = Field(default=4, ge=1)
    #: Seconds between outbox polls in each worker, and how long a claimed delivery stays claimed (never less
    #: than the webhook timeout plus 30 s; a send still in flight when it runs out is not sent twice by its
    #: worker, see ``jobs.delivery.outbox``).
    outbox_poll_interval: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    outbox_lease: float = 60.0
    #: Lifetime of the presigned artifact links in webhook payloads and download redirects (S3 caps it at 7 days).
    artifact_link_expiry: float = 24 * 3600
    #: Seconds between retention sweeps (one worker at a time).
    retention_interval: float = 300.0
    #: ``GET /metrics`` without the API token (for a Prometheus that cannot send one); off by default.
    metrics_public: bool = False
    #: ``json`` for one JSON object per log line on stderr (every process); ``text`` otherwise.
    log_format: Literal["text", "json"] = "text"
    #: Serve the dashboard on its own listener (its own origin), away from the functions' pages
    #: (``backburner api --dashboard-port``); its address defaults to the API's ``--host``.
    dashboard_port: int | None = Field(default=None, ge=1, le=65535)
    dashboard_host: str | None = None
    #: Failed authentication attempts (wrong bearer token or dashboard login) one client address may make
    #: per window of this many seconds before it gets 429 until the window ends.
    auth_failure_limit: int = Field(default=10, ge=1)
    auth_failure_window: float = Field(default=300.0, gt=0)
    #: More host names `dev` answers to besides its bound address, localhost, 127.0.0.1 and [::1]
    #: (comma-separated; the Host check keeps web pages from reaching `dev` through DNS rebinding).
    allowed_hosts: str = ""
    #: Seconds a connection may take to send a request's line and headers (from connecting, or from the first
    #: byte of a request on a kept-alive one): slower ones get 408 and are closed, so connections that
    #: trickle a head (slowloris) cannot pile up.
    head_timeout: float = Field(default=30.0, gt=0, allow_inf_nan=False)
    #: How a worker holds its attempts (memory, processes): ``auto`` uses cgroup v2 where the host delegates
    #: the worker a cgroup, else the watchdog; ``cgroup`` refuses to start without it; ``watchdog`` never tries.
    containment: Literal["auto", "cgroup", "watchdog"] = "auto"
    #: A run's output rate cap: lines a second per attempt after a burst of ``log_burst``; 0 turns it off.
    log_rate: float = Field(default=1000.0, ge=0)
    log_burst: int = Field(default=5000, ge=1)

    @field_validator("redis_url")
    @classmethod
    def _redis_url_format(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None  # unset or empty: `dev` starts its own Redis, the other services say they need one
        from redis.connection import parse_url  # redis-py's own parser, so what passes here connects there

        try:
            parse_url(value)
        except ValueError as exc:
            raise ValueError(
                f"{without_password(value)!r} is not a Redis URL ({exc}): use redis://host:6379/0, "
                "rediss://host:6380/0 for TLS, or unix:///path/to/redis.sock"
            ) from None
        return value

    @field_validator("artifacts")
    @classmethod
    def _artifacts_location(cls, value: str | None) -> str | None:
        """Checked here, as netlify.toml's ``artifacts`` is: else every run that writes a file would fail."""
        if value is None or not value.strip():
            return None  # unset or empty: the data folder's artifacts/
        from .site.values import artifacts_location

        return artifacts_location(value)

    @field_validator("webhook_secret")
    @classmethod
    def _secret_format(cls, value: str | None) -> str | None:
        if value is not None and not all(part.startswith("whsec_") for part in value.split() or [""]):
            raise ValueError(
                "must start with 'whsec_' followed by base64 (Standard Webhooks format), e.g. from "
                "python -c \"import base64,os;print('whsec_'+base64.b64encode(os.urandom(32)).decode())\""
            )
        return value

    @field_validator("webhook_retries")
    @classmethod
    def _retries_format(cls, value: str) -> str:
        from .site.durations import parse_duration

        for item in value.split(","):
            if item.strip():
                try:
                    seconds = parse_duration(item.strip())
                except ValueError as exc:
                    raise ValueError(f"{exc} (e.g. '5s,30s,2m,10m')") from None
                if seconds <= 0:
                    raise ValueError(f"{item.strip()!r} is not a delay: each must be more than 0 (e.g. '5s,30s,2m')")
        return value

    @property
    def fence_after(self) -> float:
        """Seconds without a heartbeat landing after which a worker pauses its running attempts
        (``WorkerProcess._held``): short of ``worker_timeout`` by enough to cover the watch's cadence (0.25 s),
        a watch read held by a dead link for its 1 s timeout, and modest clock skew between hosts. A
        ``worker_timeout`` under about 4 s leaves less than that (tests compress it to 2 s)."""
        return self.worker_timeout - min(5.0, self.worker_timeout / 3)

    @cached_property
    def data_path(self) -> Path:
        return (self.data_dir or self.site / ".backburner").resolve()

    @cached_property
    def artifacts_url(self) -> str:
        return self.artifacts or str(self.data_path / "artifacts")

    @property
    def webhook_retry_schedule(self) -> tuple[float, ...] | None:
        """The configured delays in seconds, or None for the built-in schedule."""
        from .site.durations import parse_duration

        items = [item.strip() for item in self.webhook_retries.split(",") if item.strip()]
        return tuple(parse_duration(item) for item in items) if items else None

    @property
    def allowed_host_list(self) -> list[str]:
        return [item.strip() for item in self.allowed_hosts.split(",") if item.strip()]

    @property
    def webhook_allow_list(self) -> list[str]:
        """BACKBURNER_WEBHOOK_ALLOW's entries; in `dev`, loopback addresses too."""
        listed = [item.strip() for item in self.webhook_allow.split(",") if item.strip()]
        return [*listed, *DEV_WEBHOOK_ALLOW] if self.dev else listed


def without_password(url: str) -> str:
    """``url`` fit for a message: any password replaced by ``***``."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()
    except ValueError:
        return "<unparseable URL>"


def variable(field: str) -> str:
    """The environment variable that sets ``field``."""
    return "REDIS_URL" if field == "redis_url" else f"BACKBURNER_{field.upper()}"


def _problem(error: Any) -> str:
    """One pydantic error as ``VARIABLE='value': what is wrong``; secret values are never shown."""
    field = str(error["loc"][0]).lower().removeprefix("backburner_") if error.get("loc") else ""
    message = str(error["msg"]).removeprefix("Value error, ")
    if field in _SECRET_FIELDS or error.get("type") == "value_error":
        return f"{variable(field)}: {message}"
    return f"{variable(field)}={str(error.get('input'))[:80]!r}: {message}"


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; keyword overrides win (the CLI passes its flags this way).

    Raises ConfigError naming each variable that is wrong and how, never pydantic's multi-line report.
    """
    try:
        return Settings(**{key: value for key, value in overrides.items() if value is not None})  # type: ignore[arg-type]
    except ValidationError as exc:
        errors = exc.errors()
        plural = "s" if len(errors) > 1 else ""
        raise ConfigError(f"{'; '.join(_problem(e) for e in errors)} (environment variable{plural})") from None
