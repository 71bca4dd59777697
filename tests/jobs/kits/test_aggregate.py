"""The aggregation kit against a real loopback API: pagination, retries, timeouts, auth, per-host limits,
ETags remembered in a real Redis, and both partial-failure policies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pandas as pd
import pytest

from jobs.aggregate import (
    AggregateError,
    Basic,
    Bearer,
    Cursor,
    Header,
    LinkHeader,
    PageNumber,
    Source,
    aggregate,
    collect,
    sources_from,
)
from jobs.aggregate.cache import EtagCache
from jobs.errors import ConfigError
from jobs.execution.context import Context
from jobs.execution.task import attempt_context

from .apis import Api


@pytest.fixture
def api() -> Iterator[Api]:
    with Api() as server:
        yield server


def quick(name: str, url: str, **options: object) -> Source:
    return Source(name, url, **{"backoff": 0.01, "timeout": 5.0, **options})  # type: ignore[arg-type]


def ids(result: object, name: str) -> list[str]:
    return [r["id"] for r in result.results[name].records]  # type: ignore[attr-defined]


def test_three_kinds_of_pagination_are_followed_to_the_end(api):
    result = collect(
        [
            quick("link", f"{api.url}/link", paginate=LinkHeader()),
            quick("cursor", f"{api.url}/cursor", paginate=Cursor("cursor", "next"), items="data"),
            quick("pages", f"{api.url}/pages", paginate=PageNumber("page", start=1)),
        ],
        cache=False,
    )
    assert ids(result, "link") == [f"L{p}-{i}" for p in (1, 2, 3) for i in range(4)]
    assert ids(result, "cursor") == [f"C{c}-{i}" for c in (0, 1, 2) for i in range(2)]
    assert ids(result, "pages") == [f"P{p}-{i}" for p in (1, 2, 3) for i in range(3)]
    assert [s.query.get("cursor") for s in api.requests("/cursor")] == [None, "1", "2"]
    assert [s.query["page"] for s in api.requests("/pages")] == ["1", "2", "3", "4"]  # the 4th page is empty
    assert result.results["link"].pages == 3
    frame = result.frame()
    assert list(frame.columns) == ["source", "id"] and len(frame) == 12 + 6 + 9
    assert frame["source"].value_counts().to_dict() == {"link": 12, "pages": 9, "cursor": 6}


def test_pagination_never_takes_a_sources_credentials_to_another_origin(api):
    """An answer names the next page; one on another host (or port, or scheme) would get the source's headers,
    its credentials, so the source fails instead, naming both origins."""
    with Api() as other:
        api.elsewhere = other.url
        result = collect(
            [
                quick("link", f"{api.url}/elsewhere", paginate=LinkHeader(), auth=Bearer("t0ken-for-api-only")),
                quick(
                    "cursor",
                    f"{api.url}/elsewhere?as=cursor",
                    paginate=Cursor(None, "next"),
                    items="data",
                    auth=Header("X-Api-Key", "k3y-for-api-only"),
                ),  # fmt: skip
            ],
            cache=False,
            on_error="continue",
        )
        assert other.seen == []
    for name in ("link", "cursor"):
        error = result.results[name].error or ""
        assert f"the next page is on {other.url}, not on the source's own {api.url};" in error, error
        assert ids(result, name) == ["H"] and result.results[name].pages == 1


def test_page_number_stops_on_a_short_page_when_the_size_is_known(api):
    result = collect([quick("pages", f"{api.url}/pages", paginate=PageNumber(size=5, size_param="n"))], cache=False)
    assert len(result.results["pages"].records) == 3
    assert [(s.query["page"], s.query["n"]) for s in api.requests("/pages")] == [("1", "5")]


def test_retries_with_backoff_honour_retry_after_then_succeed(api):
    api.flaky_failures = 2
    result = collect([quick("flaky", f"{api.url}/flaky", retries=3)], cache=False)
    assert ids(result, "flaky") == ["F"]
    assert result.results["flaky"].requests == 3
    assert [s.status for s in api.requests("/flaky")] == [503, 503, 200]


def test_a_source_out_of_retries_fails_the_run_by_default_naming_every_failure(api):
    with pytest.raises(AggregateError) as caught:
        collect(
            [
                quick("ok", f"{api.url}/link", paginate=LinkHeader()),
                quick("broken", f"{api.url}/broken", retries=2),
                quick("missing", f"{api.url}/missing", retries=5),
            ],
            cache=False,
        )
    assert set(caught.value.failed) == {"broken", "missing"}
    assert "HTTP 500" in caught.value.failed["broken"] and "after 3 attempts" in caught.value.failed["broken"]
    assert "HTTP 404" in caught.value.failed["missing"]
    assert len(api.requests("/missing")) == 1  # a 404 is not retried
    assert len(api.requests("/broken")) == 3


def test_continue_policy_returns_what_worked_and_lists_failures(api):
    result = collect(
        [
            quick("ok", f"{api.url}/pages", paginate=PageNumber()),
            quick("slow", f"{api.url}/slow", timeout=0.2, retries=1),
            quick("notjson", f"{api.url}/notjson"),
        ],
        on_error="continue",
        cache=False,
    )
    assert sorted(result.failed) == ["notjson", "slow"]
    assert "timed out after 0.2s" in result.failed["slow"] and "after 2 attempts" in result.failed["slow"]
    assert "did not answer JSON" in result.failed["notjson"]
    summary = result.summary()
    assert summary["failed"] == ["notjson", "slow"] and summary["records"] == 9
    assert summary["sources"]["slow"]["requests"] == 2
    assert set(result.frame()["source"]) == {"ok"}


def test_auth_values_come_from_the_environment(api, monkeypatch):
    monkeypatch.setenv("KIT_TOKEN", "t0ken")
    monkeypatch.setenv("KIT_USER", "ann")
    monkeypatch.setenv("KIT_PASS", "s3cret")
    api.expected_auth = {"Authorization": "Bearer t0ken"}
    assert ids(collect([quick("a", f"{api.url}/auth", auth=Bearer("env:KIT_TOKEN"))], cache=False), "a") == ["A"]
    api.expected_auth = {"Authorization": "Basic YW5uOnMzY3JldA=="}
    assert ids(collect([quick("a", f"{api.url}/auth", auth=Basic("env:KIT_USER", "env:KIT_PASS"))], cache=False), "a")
    api.expected_auth = {"X-Api-Key": "t0ken"}
    result = collect([quick("a", f"{api.url}/auth", auth=Header("X-Api-Key", "env:KIT_TOKEN"))], cache=False)
    assert ids(result, "a") == ["A"]
    with pytest.raises(AggregateError, match="HTTP 401"):
        collect([quick("a", f"{api.url}/auth", auth=Header("X-Api-Key", "wrong"))], cache=False)
    monkeypatch.delenv("KIT_TOKEN")
    before = len(api.seen)
    with pytest.raises(ConfigError, match="environment variable KIT_TOKEN is not set"):
        collect([quick("a", f"{api.url}/auth", auth=Bearer("env:KIT_TOKEN"))], cache=False)
    assert len(api.seen) == before  # refused before any request


def test_per_host_limit_caps_requests_in_flight(api):
    api.gate = 3  # the server answers requests in groups of 3 that wait together (or alone after 5 s)
    sources = [quick(f"g{n}", f"{api.url}/gate") for n in range(9)]
    started = time.monotonic()
    result = collect(sources, per_host=3, cache=False)
    assert len(result.records()) == 9
    assert api.max_in_flight == 3
    assert time.monotonic() - started < 4  # no group waited out the timeout: three really ran together

    api.max_in_flight, api.gate, api.gate_timeout = 0, 2, 0.3
    collect([quick(f"g{n}", f"{api.url}/gate") for n in range(2)], per_host=1, cache=False)
    assert api.max_in_flight == 1  # with a limit of 2 both would have met at the gate


def test_etags_are_remembered_in_redis_between_runs(api, redis_server, namespace):
    def context() -> Context:
        return Context(attempt_context("agg", "R", 60, namespace=namespace, redis_url=redis_server.url))

    source = quick("etag", f"{api.url}/etag", paginate=LinkHeader())
    first = asyncio.run(aggregate([source], context=context()))
    assert first.results["etag"].not_modified == 0 and len(first.results["etag"].records) == 4
    second = asyncio.run(aggregate([source], context=context()))
    assert second.results["etag"].not_modified == 2  # both pages answered 304 ...
    assert second.results["etag"].records == first.results["etag"].records  # ... and came from the cache
    assert [s.status for s in api.requests("/etag")] == [200, 200, 304, 304]
    assert all("if-none-match" in s.headers for s in api.requests("/etag")[2:])
    api.version = 2  # the data changes: new ETags, new bodies
    third = asyncio.run(aggregate([source], context=context()))
    assert third.results["etag"].not_modified == 0
    assert {r["version"] for r in third.results["etag"].records} == {2}
    keys = list(context().redis.scan_iter(f"{namespace}:aggregate:etag:*"))  # type: ignore[union-attr]
    assert len(keys) == 2 and all(context().redis.ttl(k) > 0 for k in keys)  # type: ignore[union-attr]


def test_cache_entries_are_scoped_by_function_and_source(api):
    cache = EtagCache(scope="one")
    other = EtagCache(scope="two")
    source = quick("etag", f"{api.url}/etag", paginate=LinkHeader())
    collect([source], cache=cache)
    collect([source], cache=other)
    assert [s.status for s in api.requests("/etag")] == [200, 200, 200, 200]
    collect([source], cache=cache)
    assert [s.status for s in api.requests("/etag")][-2:] == [304, 304]


def test_sources_from_a_config_table(api, monkeypatch):
    monkeypatch.setenv("KIT_KEY", "k")
    api.expected_auth = {"X-Api-Key": "k"}
    sources = sources_from(
        {
            "link": {"url": f"{api.url}/link", "paginate": "link", "backoff": 0.01},
            "cursor": {"url": f"{api.url}/cursor", "items": "data", "paginate": {"cursor": {"field": "next"}}},
            "auth": {"url": f"{api.url}/auth", "auth": {"header": {"X-Api-Key": "env:KIT_KEY"}}},
        }
    )
    result = collect(sources, cache=False)
    assert [len(result.results[n].records) for n in ("link", "cursor", "auth")] == [12, 6, 1]
    with pytest.raises(ConfigError, match="source 'x': auth must be"):
        sources_from({"x": {"url": api.url, "auth": {"token": "nope"}}})
    with pytest.raises(ConfigError, match="paginate must be"):
        sources_from({"x": {"url": api.url, "paginate": "scroll"}})


def test_write_combined_frame_and_json(api, tmp_path):
    written: dict[str, object] = {}

    def writer(name: str, data: object, content_type: str | None = None) -> None:
        written[name] = data

    result = collect([quick("pages", f"{api.url}/pages", paginate=PageNumber())], cache=False)
    result.write(writer, "combined.parquet")
    result.write(writer, "combined.json")
    frame = written["combined.parquet"]
    assert isinstance(frame, pd.DataFrame) and len(frame) == 9
    assert '"pages": [{"id": "P1-0"}' in str(written["combined.json"])


def test_the_combined_frame_survives_fields_whose_types_differ_between_sources(api, tmp_path):
    result = collect(
        [quick("numbers", f"{api.url}/numbers"), quick("pages", f"{api.url}/pages", paginate=PageNumber())],
        cache=False,
    )
    frame = result.frame()
    assert list(frame.columns) == ["source", "id", "nested.a"]
    frame.to_parquet(tmp_path / "combined.parquet")  # mixed int/str ids would make pyarrow refuse
    back = pd.read_parquet(tmp_path / "combined.parquet")
    assert back["id"].tolist()[:3] == ["1", "2", "P1-0"] and back["nested.a"].tolist()[:2] == [1.0, 2.0]


def test_records_that_are_not_objects_are_one_value_each(api, tmp_path):
    result = collect([quick("scalars", f"{api.url}/scalars"), quick("numbers", f"{api.url}/numbers")], cache=False)
    frame = result.frame()
    assert frame[frame["source"] == "scalars"]["value"].tolist() == [1, 2, 3]
    frame.to_parquet(tmp_path / "combined.parquet")


def test_an_items_path_the_answer_lacks_fails_the_source_instead_of_finding_nothing(api):
    wrong = quick("wrong", f"{api.url}/cursor", items="datum", paginate=Cursor("cursor", "next"))
    result = collect([wrong], on_error="continue", cache=False)
    assert result.failed == {"wrong": result.results["wrong"].error}
    assert "no 'datum' (found: data, next)" in result.results["wrong"].error
    assert len(api.requests("/cursor")) == 1  # not retried: the answer will not grow that field
