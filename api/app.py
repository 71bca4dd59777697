"""The FastAPI application: Netlify invocation URLs, the management API and health checks."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from jobs.broker import connect_async
from jobs.errors import ConfigError
from jobs.execution.isolation import ChildPool
from jobs.runtime import Runtime
from jobs.settings import Settings, load_settings
from jobs.wiring import open_runtime

from . import artifacts, dashboard, errors, functions, health, invoke, metrics, routes, runs, schedules, streams

SYNC_POOL_SIZE = 4


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


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    """Build the app; the runtime (Redis, site) opens in the lifespan, not at import time."""
    settings = settings or load_settings()
    if not settings.dev and not settings.api_token:
        raise ConfigError(
            "BACKBURNER_API_TOKEN is not set. Outside `backburner dev` the API needs a token to protect "
            "run data and artifacts: export BACKBURNER_API_TOKEN=<a long random string>."
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.runtime = runtime or open_runtime(settings)
        app.state.sync_pool = _LazyPool(settings)
        aclient = connect_async(app.state.runtime.settings)
        app.state.runtime.store.use_async(aclient)
        try:
            yield
        finally:
            app.state.sync_pool.close()
            await aclient.aclose()
            if runtime is None:
                app.state.runtime.close()

    app = FastAPI(
        title="Backburner",
        summary="Netlify-style background and scheduled functions",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    errors.install(app)
    app.router.routes.extend(invoke.routes)
    app.include_router(functions.router)
    app.include_router(runs.router)
    app.include_router(artifacts.router)
    app.include_router(schedules.router)
    app.include_router(health.router)
    app.include_router(streams.router)
    app.include_router(metrics.router)
    dashboard.install(app)
    app.router.default = routes.routed  # only what no endpoint above answers: the site's rewrites and paths
    return app
