"""The batch kit in-process, with checkpoints and progress in a real Redis and a real artifact store (a folder,
or S3 on the moto server): counts, partitions, rejects, resume without duplicates, an idempotent commit."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs.artifacts.stores import store_for
from jobs.artifacts.writer import ArtifactWriter
from jobs.batch import Batch, BatchError
from jobs.batch.sink import Staging
from jobs.execution.context import Context
from jobs.execution.task import attempt_context
from jobs.runs import new_id
from tests.support.s3 import s3_client

ROWS = 2_500


@pytest.fixture
def source(tmp_path: Path) -> str:
    frame = pd.DataFrame(
        {
            "id": range(ROWS),
            "country": [["de", "fr", "nl"][i % 3] for i in range(ROWS)],
            "amount": [-1.0 if i % 50 == 7 else i * 1.5 for i in range(ROWS)],
        }
    )
    path = tmp_path / "in.csv"
    frame.to_csv(path, index=False)
    return str(path)


@pytest.fixture
def make_context(redis_server: Any, namespace: str, tmp_path: Path) -> Any:
    def make(run_id: str | None = None, attempt: int = 1, store: str | None = None) -> Context:
        info = attempt_context("kit", run_id or new_id(), 60, attempt=attempt, namespace=namespace,
                               redis_url=redis_server.url)  # fmt: skip
        context = Context(info)
        context.artifacts = ArtifactWriter(store or str(tmp_path / "store"), "kit", context.run_id)
        return context

    return make


def upper(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    df = df.assign(country=df["country"].str.upper())
    bad = df["amount"] < 0
    return df[~bad], df[bad].assign(reason="negative amount")


def read_output(store: Any, run_id: str, names: list[str]) -> pd.DataFrame:
    frames = []
    for name in names:
        if name.endswith(".parquet"):
            data = b"".join(store.open(f"runs/kit/{run_id}/{name}"))
            frame = pd.read_parquet(io.BytesIO(data))
            folder = name.split("/")[1]
            frames.append(frame.assign(country=folder.split("=")[1]) if "=" in folder else frame)
    return pd.concat(frames, ignore_index=True)


def test_run_writes_partitions_and_rejects_and_counts(make_context, source):
    context = make_context()
    result = Batch(context, source, upper, partition_by=["country"], chunk_rows=1000).run()
    assert result == {"rows_in": ROWS, "rows_out": ROWS - 50, "rows_rejected": 50, "chunks": 3, "parts": 9,
                      "output": "output/", "rejects": "rejects.jsonl", "resumed_at_chunk": 0}  # fmt: skip
    names = [entry["name"] for entry in context.artifacts.written]
    assert "output/_SUCCESS" in names and "rejects.jsonl" in names
    assert "output/country=DE/part-00000-000002.parquet" in names
    assert not any("_staging" in name for name in names)
    store = store_for(context.artifacts.store_url)
    assert store.list(f"runs/kit/{context.run_id}/_staging/") == []
    output = read_output(store, context.run_id, names)
    assert sorted(output["id"]) == [i for i in range(ROWS) if i % 50 != 7]
    assert set(output["country"]) == {"DE", "FR", "NL"}
    rejects = pd.read_json(io.BytesIO(b"".join(store.open(f"runs/kit/{context.run_id}/rejects.jsonl"))), lines=True)
    assert len(rejects) == 50 and set(rejects["reason"]) == {"negative amount"}
    assert list(rejects["id"]) == [i for i in range(ROWS) if i % 50 == 7]  # in chunk order
    progress = context.redis.hgetall(context.keys.progress(context.run_id))  # type: ignore[union-attr]
    assert progress[b"done"] == str(ROWS).encode() and b"chunk 3" in progress[b"message"]


def test_validate_callable_rejects_rows_before_the_transform(make_context, source):
    seen: list[int] = []

    def transform(df: pd.DataFrame) -> pd.DataFrame:
        seen.extend(df["id"])
        return df

    def validate(df: pd.DataFrame) -> pd.Series:
        return df["amount"].where(df["amount"] < 0).map(lambda v: None if pd.isna(v) else f"amount {v} < 0")

    context = make_context()
    result = Batch(context, source, transform, validate=validate, sink="csv", chunk_rows=700).run()
    assert (result["rows_out"], result["rows_rejected"], result["parts"]) == (ROWS - 50, 50, 4)
    assert len(seen) == ROWS - 50 and 7 not in seen
    store = store_for(context.artifacts.store_url)
    text = b"".join(store.open(f"runs/kit/{context.run_id}/output/part-00000-000000.csv")).decode()
    assert text.splitlines()[0] == '"id","country","amount"' and len(text.splitlines()) == 700 - 14 + 1


def test_resume_after_a_failed_attempt_has_no_duplicates_and_no_gaps(make_context, source):
    calls = 0

    def dies_on_third_chunk(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("worker lost mid-chunk")
        return upper(df)

    first = make_context()
    with pytest.raises(RuntimeError):
        Batch(first, source, dies_on_third_chunk, partition_by=["country"], chunk_rows=500).run()
    store = store_for(first.artifacts.store_url)
    # What a dying attempt may leave: a part of the chunk it was writing, with rows that are not final.
    staging = Staging(store, f"runs/kit/{first.run_id}/")
    junk = pa.table({"id": [999_999], "amount": [0.0]})
    path = Path(store.root) / "junk.parquet"  # type: ignore[attr-defined]
    pq.write_table(junk, path)
    staging.put("output/country=XX/part-00000-000002.parquet", path)

    retry = make_context(first.run_id, attempt=2)
    result = Batch(retry, source, dies_on_third_chunk, partition_by=["country"], chunk_rows=500).run()
    assert result["resumed_at_chunk"] == 2 and calls == 3 + 3  # chunks 2, 3 and 4 only
    assert (result["rows_in"], result["rows_out"], result["chunks"]) == (ROWS, ROWS - 50, 5)
    names = [entry["name"] for entry in retry.artifacts.written]
    assert not any("country=XX" in name for name in names)
    output = read_output(store, first.run_id, names)
    assert sorted(output["id"]) == [i for i in range(ROWS) if i % 50 != 7]  # each row exactly once


def test_commit_is_idempotent(make_context, source):
    context = make_context()
    batch = Batch(context, source, upper, chunk_rows=1000)
    first = batch.run()
    again = make_context(context.run_id, attempt=2)  # e.g. the worker died after the handler returned
    touched: list[int] = []
    second = Batch(again, source, lambda df: touched.append(1) or df, chunk_rows=1000).run()  # type: ignore[func-returns-value]
    assert touched == [] and second["parts"] == first["parts"] and second["rows_out"] == first["rows_out"]
    assert sorted(e["name"] for e in again.artifacts.written) == sorted(e["name"] for e in context.artifacts.written)


def test_s3_store_commits_by_copy_and_manifest(make_context, source, s3_endpoint, s3_bucket, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    context = make_context(store=f"s3://{s3_bucket}/pfx")
    result = Batch(context, source, upper, partition_by=["country"], chunk_rows=1000).run()
    keys = sorted(o["Key"] for o in s3_client(s3_endpoint).list_objects_v2(Bucket=s3_bucket)["Contents"])
    prefix = f"pfx/runs/kit/{context.run_id}/"
    assert not any("_staging" in key for key in keys)
    assert f"{prefix}output/_SUCCESS" in keys and f"{prefix}rejects.jsonl" in keys
    assert len([k for k in keys if k.endswith(".parquet")]) == result["parts"] == 9
    store = store_for(context.artifacts.store_url)
    manifest = b"".join(store.open(f"runs/kit/{context.run_id}/output/_SUCCESS"))
    assert b'"rows_out": 2450' in manifest and manifest.count(b"part-00000-") == 9


def test_publish_after_a_crash_in_the_middle_of_an_s3_copy(make_context, source, s3_endpoint, s3_bucket, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    context = make_context(store=f"s3://{s3_bucket}/pfx")
    store = store_for(context.artifacts.store_url)
    staging = Staging(store, f"runs/kit/{context.run_id}/")
    path = Path(source)
    staging.put("output/part-00000-000000.csv", path)
    staging.put("output/part-00000-000001.csv", path)
    store.promote(staging.root + "output", staging.prefix + "output")  # then the attempt died before the manifest
    staging.publish({"rows_out": 2})
    staging.publish({"rows_out": 2})  # and once more, as a retry after the manifest would
    assert [i.name.rsplit("/", 1)[1] for i in staging.published("output")] == [
        "_SUCCESS", "part-00000-000000.csv", "part-00000-000001.csv"
    ]  # fmt: skip
    assert store.list(staging.root) == []


def test_schema_makes_every_part_the_same_type(make_context, source):
    context = make_context()
    schema = {"id": pa.int64(), "country": pa.string(), "amount": pa.float32()}
    Batch(context, source, schema=schema, chunk_rows=1000).run()
    store = store_for(context.artifacts.store_url)
    data = b"".join(store.open(f"runs/kit/{context.run_id}/output/part-00000-000000.parquet"))
    assert pq.read_table(io.BytesIO(data)).schema.field("amount").type == pa.float32()


def test_a_schema_that_leaves_columns_out_is_refused_rather_than_dropping_them(make_context, source):
    with pytest.raises(BatchError, match=r"columns the schema does not name \(country, amount\)"):
        Batch(make_context(), source, schema={"id": pa.int64()}, chunk_rows=1000).run()
    wider = {"id": pa.int64(), "country": pa.string(), "amount": pa.float32(), "vat": pa.float32()}
    with pytest.raises(BatchError, match=r"names columns the chunk lacks \(vat\)"):
        Batch(make_context(), source, schema=wider, chunk_rows=1000).run()


def test_mistakes_are_explained(make_context, source):
    context = make_context()
    with pytest.raises(BatchError, match="use sink='parquet'"):
        Batch(context, source, sink="csv", partition_by=["country"])
    with pytest.raises(BatchError, match="Unknown sink"):
        Batch(context, source, sink="xlsx")
    with pytest.raises(BatchError, match="need a 'reason' column"):
        Batch(context, source, lambda df: (df, df), chunk_rows=1000).run()
    with pytest.raises(BatchError, match="return a DataFrame"):
        Batch(make_context(), source, lambda df: df.to_dict(), chunk_rows=1000).run()
    with pytest.raises(BatchError, match="partition_by names 'nope', which the output does not have") as raised:
        Batch(make_context(), source, partition_by=["nope"], chunk_rows=1000).run()
    assert raised.value.retriable is False  # it would fail the same way on every retry
