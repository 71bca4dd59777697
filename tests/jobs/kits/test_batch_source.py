"""Batch sources: exact, stable chunks from CSV, JSON Lines, Parquet, S3 objects and SQL queries."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs.batch.fanout import plan
from jobs.batch.source import SQL, BatchError, ReadOptions, chunks, count_rows, resolve
from jobs.retry import steering
from tests.support.s3 import no_credentials_env, patched_env, s3_client

ROWS = 10_007


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"id": range(ROWS), "name": [f"n{i}" for i in range(ROWS)], "x": [i * 0.5 for i in range(ROWS)]}
    )


def ids(tables: list[pa.Table]) -> list[int]:
    return [i for t in tables for i in t.column("id").to_pylist()]


@pytest.mark.parametrize("block_size", [1 << 12, 1 << 22])
def test_csv_chunks_are_exact_whatever_the_block_size(tmp_path, frame, block_size):
    path = tmp_path / "in.csv"
    frame.to_csv(path, index=False)
    tables = list(chunks([str(path)], 1000, ReadOptions(block_size=block_size)))
    assert [t.num_rows for t in tables] == [1000] * 10 + [7]
    assert ids(tables) == list(range(ROWS))
    window = list(chunks([str(path)], 1000, ReadOptions(block_size=block_size), start=2500, stop=5001))
    assert [t.num_rows for t in window] == [1000, 1000, 501]
    assert ids(window) == list(range(2500, 5001))


def test_parquet_resume_skips_whole_row_groups(tmp_path, frame):
    path = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pandas(frame), path, row_group_size=1000)
    tables = list(chunks([str(path)], 3000, ReadOptions(), start=3500))
    assert ids(tables) == list(range(3500, ROWS))
    assert [t.num_rows for t in tables] == [3000, 3000, 507]
    assert count_rows(str(path), ReadOptions()) == ROWS


def test_jsonl_with_column_selection_and_types(tmp_path, frame):
    path = tmp_path / "in.jsonl"
    frame.to_json(path, orient="records", lines=True)
    options = ReadOptions(columns=["id", "name"], column_types={"id": "int32"})
    tables = list(chunks([str(path)], 4000, options))
    assert tables[0].column_names == ["id", "name"] and tables[0].schema.field("id").type == pa.int32()
    assert ids(tables) == list(range(ROWS))


def test_several_files_read_in_order_as_one_stream(tmp_path, frame):
    (tmp_path / "parts").mkdir()
    for n, start in enumerate(range(0, ROWS, 4000)):
        frame.iloc[start : start + 4000].to_csv(tmp_path / "parts" / f"p{n}.csv", index=False)
    (tmp_path / "parts" / "README.txt").write_text("not data")
    for source in (str(tmp_path / "parts"), str(tmp_path / "parts" / "p*.csv")):
        files = resolve(source)
        assert [f.rsplit("/", 1)[1] for f in files] == ["p0.csv", "p1.csv", "p2.csv"]  # type: ignore[union-attr]
        tables = list(chunks(files, 3000, ReadOptions()))  # type: ignore[arg-type]
        assert [t.num_rows for t in tables] == [3000, 3000, 3000, 1007]  # chunks span file boundaries
        assert ids(tables) == list(range(ROWS))


def test_resolve_refuses_what_it_cannot_read(tmp_path):
    with pytest.raises(BatchError, match="does not exist"):
        resolve(str(tmp_path / "nope.csv"))
    (tmp_path / "data.xml").write_text("<x/>")
    with pytest.raises(BatchError, match="name it .csv, .jsonl or .parquet"):
        resolve(str(tmp_path / "data.xml"))
    with pytest.raises(BatchError, match="names no files"):
        resolve(str(tmp_path / "*.csv"))


def test_a_column_empty_in_the_first_block_is_read_as_text(tmp_path):
    path = tmp_path / "sparse.csv"
    lines = ["id,note"] + [f"{i}," for i in range(3000)] + [f"{i},late value" for i in range(3000, 3010)]
    path.write_text("\n".join(lines) + "\n")
    tables = list(chunks([str(path)], 5000, ReadOptions(block_size=4096)))
    notes = [n for t in tables for n in t.column("note").to_pylist()]
    assert notes[-1] == "late value" and notes[0] in (None, "")


def test_a_type_that_changes_after_the_first_block_names_the_fix(tmp_path):
    path = tmp_path / "drift.csv"
    path.write_text("code\n" + "".join(f"{i}\n" for i in range(3000)) + "A17\n")
    with pytest.raises(BatchError, match="column_types"):
        list(chunks([str(path)], 5000, ReadOptions(block_size=4096)))
    tables = list(chunks([str(path)], 5000, ReadOptions(block_size=4096, column_types={"code": "string"})))
    assert tables[0].column("code").to_pylist()[-1] == "A17"


def test_types_the_first_block_does_not_fit_name_the_file(tmp_path):
    """Opening a reader parses its first block; an error there names the file and the fix, as later ones do."""
    path = tmp_path / "prices.csv"
    path.write_text("id,price\n1,0.5\n2,1.25\n")
    with pytest.raises(BatchError, match=r"prices\.csv: .*column_types"):
        list(chunks([str(path)], 100, ReadOptions(column_types={"price": "int64"})))
    lines = tmp_path / "prices.jsonl"
    lines.write_text('{"id": 1, "price": "cheap"}\n')
    with pytest.raises(BatchError, match=r"prices\.jsonl: .*column_types"):
        list(chunks([str(lines)], 100, ReadOptions(column_types={"price": "float64"})))


def test_s3_objects_and_prefixes(s3_endpoint, s3_bucket, frame, monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    client = s3_client(s3_endpoint)
    client.put_object(Bucket=s3_bucket, Key="in/a.csv", Body=frame.iloc[:6000].to_csv(index=False).encode())
    pq.write_table(pa.Table.from_pandas(frame.iloc[6000:], preserve_index=False), tmp_path / "b.parquet")
    client.upload_file(str(tmp_path / "b.parquet"), s3_bucket, "in/b.parquet")
    client.put_object(Bucket=s3_bucket, Key="in/notes.txt", Body=b"skipped")
    files = resolve(f"s3://{s3_bucket}/in/")
    assert files == [f"s3://{s3_bucket}/in/a.csv", f"s3://{s3_bucket}/in/b.parquet"]
    tables = list(chunks(files, 2500, ReadOptions()))  # type: ignore[arg-type]
    assert ids(tables) == list(range(ROWS))
    assert count_rows(f"s3://{s3_bucket}/in/b.parquet", ReadOptions()) == ROWS - 6000


def test_s3_sources_without_credentials_or_objects_say_which_and_whether_a_retry_helps(
    s3_endpoint, s3_bucket, frame, monkeypatch
):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    missing = f"s3://{s3_bucket}/in/later.csv"
    with pytest.raises(BatchError, match=f"Source {missing} does not exist") as found:
        list(chunks([missing], 100, ReadOptions()))
    assert found.value.retriable  # it may yet be uploaded
    s3_client(s3_endpoint).put_object(Bucket=s3_bucket, Key="in/a.csv", Body=frame.to_csv(index=False).encode())
    with patched_env(no_credentials_env()):
        for attempt in (
            lambda: resolve(f"s3://{s3_bucket}/in/"),
            lambda: list(chunks([f"s3://{s3_bucket}/in/a.csv"], 100, ReadOptions())),
        ):
            with pytest.raises(
                BatchError, match=f"Source s3://{s3_bucket}/in/.*: no usable AWS credentials: set AWS_ACCESS_KEY_ID"
            ) as found:
                attempt()
            assert found.value.retriable is False
            assert steering(found.value) == {"retry": False}


def test_sql_query_in_chunks(tmp_path):
    path = tmp_path / "db.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER, name TEXT)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"n{i}") for i in range(2345)])
    source = SQL("SELECT id, name FROM t WHERE id >= :low ORDER BY id", f"sqlite:///{path}", {"low": 100})
    tables = list(chunks(source, 1000, ReadOptions(), start=500))
    assert ids(tables) == list(range(600, 2345))
    assert [t.num_rows for t in tables] == [1000, 745]


def test_sql_sources_that_cannot_be_read_say_which_and_why(tmp_path):
    path = tmp_path / "db.sqlite"
    sqlite3.connect(path).close()
    with pytest.raises(BatchError, match=r"SQL source sqlite:///.*db\.sqlite: query failed: no such table: nope"):
        list(chunks(SQL("SELECT * FROM nope", f"sqlite:///{path}"), 100, ReadOptions()))
    with pytest.raises(BatchError, match="not a database URL"):
        list(chunks(SQL("SELECT 1", "not a url"), 100, ReadOptions()))
    with pytest.raises(BatchError, match=r"SQL source postgresql\+psycopg://u:\*\*\*@db-host/x") as caught:
        list(chunks(SQL("SELECT 1", "postgresql+psycopg://u:secret@db-host/x"), 100, ReadOptions()))
    assert "secret" not in str(caught.value)  # a missing driver (or, with one, an unknown host): named, hidden


def test_fan_out_plans_file_groups_or_row_ranges():
    files = [f"f{n}.csv" for n in range(5)]
    slices = plan(files, 2, lambda f: 0)
    assert [s["files"] for s in slices] == [files[:2], files[2:]]
    ranges = plan(["one.csv"], 3, lambda f: 10)
    assert [(s["start"], s["stop"], s["rows"]) for s in ranges] == [(0, 4, 4), (4, 8, 4), (8, 10, 2)]
    assert plan(["one.csv"], 4, lambda f: 2) == [
        {"files": ["one.csv"], "start": 0, "stop": 1, "rows": 1},
        {"files": ["one.csv"], "start": 1, "stop": 2, "rows": 1},
    ]
    assert plan(["empty.csv"], 3, lambda f: 0)[0]["rows"] == 0
