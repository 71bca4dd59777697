"""The FastAPI application: Netlify invocation URLs, the management API and health checks.

Every request first passes the size limits (``api.limits``); in ``dev``, the Host and Origin checks
(``api.hosts``); with a dashboard port, the split between the two listeners (``api.listeners``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
from fastapi import FastAPI

from jobs.broker import address, connect_async, connect_quick, warn_of_risks
from jobs.errors import ConfigError
from jobs.execution.isolation import ChildPool
from jobs.runtime import Runtime
from jobs.settings import Settings, load_settings
from jobs.wiring import open_runtime

from . import artifacts, dashboard, docs, errors, functions, health, invoke, metrics, routes, runs, schedules, streams
from .head import HeadAsGet
from .hosts import DevGuard, HostAllowList, is_loopback
from .limits import RequestLimits
from .listeners import Listen, ListenerSplit
from .redirects import RelativeRedirects
from .sessions import open_sessions
from .throttle import AuthThrottle

log = logging.getLogger("backburner.api")

SYNC_POOL_SIZE = 4
#: Shorter API tokens are refused at start-up (outside a loopback-only `dev`): they can be guessed.
MIN_TOKEN_LENGTH = 16


class _LazyPool:
    """Warm children for synchronous functions, started on first use (many sites have none)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._pool: ChildPool | None = None
        self._lock = threading.Lock()

    def __call__(self) -> ChildPool:
        with self._lock:
            if self._pool is None:
                self._pool = ChildPool(SYNC_POOL_SIZE, max_runs=self._settings.child_max_runs).start()
            return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()


def check_token(settings: Settings, listen: Listen) -> None:
    """Refuse to start where run data would be served with no token, or a guessable one (ConfigError)."""
    token = settings.api_token or ""
    advice = "export BACKBURNER_API_TOKEN=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
    if settings.dev:
        exposed = [host for host in listen.hosts if not is_loopback(host)]
        if exposed and len(token) < MIN_TOKEN_LENGTH:
            raise ConfigError(
                f"`backburner dev` serves run data without a login, so it listens on loopback only; --host "
                f"{exposed[0]} would serve it to the network. Bind 127.0.0.1, or set an API token of at least "
                f"{MIN_TOKEN_LENGTH} characters: {advice}"
            )
        return
    if not token:
        raise ConfigError(
            "BACKBURNER_API_TOKEN is not set. Outside `backburner dev` the API needs a token to protect "
            f"run data and artifacts: {advice}"
        )
    if len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(
            f"BACKBURNER_API_TOKEN is {len(token)} characters long; use at least {MIN_TOKEN_LENGTH} "
            f"(a short token can be guessed): {advice}"
        )


def create_app(
    settings: Settings | None = None, runtime: Runtime | None = None, listen: Listen | None = None
) -> FastAPI:
    """Build the app; the runtime (Redis, site) opens in the lifespan, not at import time.

    ``listen`` says where the server listens (``backburner api`` passes its flags): `dev` answers only to
    those hosts, and with a dashboard port the dashboard gets its own listener.
    """
    settings = settings or load_settings()
    listen = listen or Listen(dashboard_host=settings.dashboard_host, dashboard_port=settings.dashboard_port)
    check_token(settings, listen)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.runtime = runtime or open_runtime(settings)
        app.state.sync_pool = _LazyPool(settings)
        aclient = connect_async(app.state.runtime.settings)
        app.state.runtime.store.use_async(aclient)
        app.state.aclient = aclient
        app.state.ready_redis = connect_quick(app.state.runtime.settings, health.READY_TIMEOUT_S)
        try:
            app.state.sessions = await open_sessions(app)
            await asyncio.to_thread(warn_of_risks, app.state.ready_redis, log)
        except redis.RedisError as exc:  # serve anyway (503s until Redis is back); sessions are made on first use
            log.warning(
                "Redis at %s does not answer (%s); serving anyway: what needs Redis answers 503 until it does "
                "(GET /readyz tells when)",
                address(aclient),
                exc,
            )
            app.state.sessions = None
        app.state.throttle = AuthThrottle(
            aclient,
            app.state.runtime.store.keys,
            limit=settings.auth_failure_limit,
            window_s=settings.auth_failure_window,
        )
        try:
            yield
        finally:
            app.state.sync_pool.close()
            await aclient.aclose()
            app.state.ready_redis.close()
            if runtime is None:
                app.state.runtime.close()

    app = FastAPI(
        title="Backburner",
        summary="Netlify-style background and scheduled functions",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # api.docs serves Swagger UI from the package, not a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.listen = listen
    errors.install(app)
    app.router.routes.extend(invoke.routes)
    app.include_router(functions.router)
    app.include_router(runs.router)
    app.include_router(artifacts.router)
    app.include_router(schedules.router)
    app.include_router(health.router)
    app.include_router(streams.router)
    app.include_router(metrics.router)
    app.include_router(docs.router)
    dashboard.install(app)
    app.router.default = routes.routed  # only what no endpoint above answers: the site's rewrites and paths
    # The last added runs first: size limits, then dev's Host/Origin checks, then the listener split, then HEAD, then
    # redirects made relative.
    app.add_middleware(RelativeRedirects)
    app.add_middleware(HeadAsGet)
    if listen.split:
        app.add_middleware(ListenerSplit, listen=listen)
    if settings.dev:
        app.add_middleware(DevGuard, hosts=HostAllowList(listen.hosts, settings.allowed_host_list))
    app.add_middleware(RequestLimits)
    return app
