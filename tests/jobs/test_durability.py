"""A Redis whose settings could lose accepted runs is named at start-up, by the API and by every worker."""

from __future__ import annotations

import logging

import pytest
import redis

from jobs.broker.durability import risks
from tests.support.procs import wait_for
from tests.support.redis import RedisServer


@pytest.fixture
def redis_server(tmp_path):
    """A private Redis per test: these tests change its settings."""
    with RedisServer(tmp_path / "redis") as server:
        yield server


def test_the_embedded_redis_settings_keep_every_accepted_run(redis_client):
    assert risks(redis_client) == []


def test_no_append_only_file_is_named_with_its_fix(redis_client):
    redis_client.config_set("appendonly", "no")

    [risk] = risks(redis_client)

    port = redis_client.connection_pool.connection_kwargs["port"]
    assert risk.startswith(f"Redis at 127.0.0.1:{port} keeps no append-only file (appendonly no)")
    assert "Set `appendonly yes` and `appendfsync always`." in risk


def test_an_append_only_file_synced_once_a_second_is_named(redis_client):
    redis_client.config_set("appendfsync", "everysec")

    [risk] = risks(redis_client)

    assert "`appendfsync everysec`" in risk
    assert "Set `appendfsync always`." in risk


def test_an_eviction_policy_is_named(redis_client):
    redis_client.config_set("maxmemory-policy", "volatile-lru")

    [risk] = risks(redis_client)

    assert "evicts keys when it runs out of memory (maxmemory-policy volatile-lru)" in risk
    assert "Set `maxmemory-policy noeviction`" in risk


def test_a_user_refused_config_is_checked_by_what_info_shows(redis_client, redis_server):
    """A managed Redis often forbids CONFIG: the fsync policy cannot be read then, the rest still is."""
    redis_client.config_set("appendfsync", "everysec")
    redis_client.config_set("maxmemory-policy", "allkeys-lru")
    redis_client.acl_setuser(
        "limited", enabled=True, passwords=["+limited-pass"], keys=["*"], commands=["+@all", "-config"]
    )
    limited = redis.Redis(port=redis_server.port, username="limited", password="limited-pass")
    with pytest.raises(redis.exceptions.NoPermissionError):
        limited.config_get("appendfsync")

    found = risks(limited)

    assert len(found) == 1
    assert "maxmemory-policy allkeys-lru" in found[0]


def test_the_api_warns_at_start_up(redis_client, settings, caplog):
    from fastapi.testclient import TestClient

    from api.app import create_app

    redis_client.config_set("appendonly", "no")
    with (
        caplog.at_level(logging.WARNING, logger="backburner.api"),
        TestClient(create_app(settings), base_url="http://localhost"),
    ):
        pass

    assert any("keeps no append-only file" in r.getMessage() for r in caplog.records if r.name == "backburner.api")


def test_a_worker_warns_at_start_up_and_runs_anyway(redis_client, start_worker, client, tmp_path):
    redis_client.config_set("maxmemory-policy", "allkeys-lru")
    output = tmp_path / "worker.log"
    start_worker(output=output)

    wait_for(lambda: "maxmemory-policy allkeys-lru" in output.read_text(), message="the worker's warning")
    run_id = client.post("/.netlify/functions/echo-background", json={"n": 1}).headers["x-nf-request-id"]
    wait_for(lambda: client.get(f"/api/runs/{run_id}").json()["status"] == "succeeded", message="the run")
