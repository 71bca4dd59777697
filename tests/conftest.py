"""Fixtures: a real Redis server, throwaway sites, settings, the API app and real worker processes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from jobs.runtime import Runtime
from jobs.settings import Settings
from jobs.wiring import open_runtime
from tests.support.procs import WorkerProc
from tests.support.redis import RedisServer
from tests.support.s3 import create_bucket, dummy_credentials_env, moto_server, patched_env
from tests.support.sites import make_site

#: Compressed timings for the reaper and heartbeats (production defaults are 2 s / 30 s / 5 s).
FAST = {
    "BACKBURNER_HEARTBEAT_INTERVAL": "0.3",
    "BACKBURNER_WORKER_TIMEOUT": "2",
    "BACKBURNER_REAP_INTERVAL": "0.5",
    "BACKBURNER_RETRY_GRACE": "3",
}


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def namespace() -> str:
    """Each test gets its own key namespace (and Dramatiq queue) in the shared server."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return make_site(tmp_path / "site")


@pytest.fixture
def env(redis_server: RedisServer, namespace: str, site: Path) -> dict[str, str]:
    return {
        "REDIS_URL": redis_server.url,
        "BACKBURNER_NAMESPACE": namespace,
        "BACKBURNER_SITE": str(site),
        "BACKBURNER_DEV": "1",
        **FAST,
    }


@pytest.fixture
def settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings()


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = open_runtime(settings)
    yield rt
    rt.close()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    from api.app import create_app

    # dev answers only to loopback Host names (DNS-rebinding protection), so not TestClient's "testserver".
    with TestClient(create_app(settings), base_url="http://localhost") as test_client:
        yield test_client


@pytest.fixture
def start_worker(site: Path, env: dict[str, str]) -> Iterator[type]:
    """Start real `backburner worker` processes: ``start_worker()`` returns a running WorkerProc."""
    started: list[WorkerProc] = []

    def start(threads: int = 2, output: Path | None = None, extra_env: dict[str, str] | None = None) -> WorkerProc:
        proc = WorkerProc(site, {**env, **(extra_env or {})}, threads=threads, output=output).start()
        started.append(proc)
        return proc

    yield start  # type: ignore[misc]
    for proc in started:
        proc.stop()


@pytest.fixture
def worker(start_worker: type, runtime: Runtime) -> WorkerProc:
    """One running worker, ready once it has heartbeated."""
    from tests.support.procs import wait_for

    proc: WorkerProc = start_worker()
    wait_for(lambda: runtime.client.zcard(runtime.store.keys.workers), timeout=30, message="worker heartbeat")
    return proc


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """One real S3 HTTP endpoint (moto's standalone server) for the session, with dummy credentials in
    this process's environment meanwhile."""
    with patched_env(dummy_credentials_env()), moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    """A fresh, empty bucket on the session's moto server."""
    return create_bucket(s3_endpoint)


@pytest.fixture
def redis_client(redis_server: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(redis_server.url)
