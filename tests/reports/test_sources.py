"""Data sources: files by extension, S3 objects through boto3, SQL through SQLAlchemy."""

from __future__ import annotations

import contextlib
import gzip
import sqlite3
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pandas.testing as pdt
import pytest

from reports import ReportError, read_sql, read_table


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({"region": ["North", "South", "East"], "revenue": [1.5, 2.25, None], "orders": [1, 2, 3]})


def test_csv_files_read_back(tmp_path: Path, frame: pd.DataFrame) -> None:
    path = tmp_path / "sales.csv"
    frame.to_csv(path, index=False)

    pdt.assert_frame_equal(read_table(path), frame)
    pdt.assert_frame_equal(read_table(str(path), usecols=["orders"]), frame[["orders"]])


def test_gzipped_csv_and_tsv_files_read_back(tmp_path: Path, frame: pd.DataFrame) -> None:
    gz = tmp_path / "sales.csv.gz"
    gz.write_bytes(gzip.compress(frame.to_csv(index=False).encode()))
    tsv = tmp_path / "sales.TSV"
    frame.to_csv(tsv, index=False, sep="\t")

    pdt.assert_frame_equal(read_table(gz), frame)
    pdt.assert_frame_equal(read_table(tsv), frame)


def test_parquet_files_read_back(tmp_path: Path, frame: pd.DataFrame) -> None:
    path = tmp_path / "sales.parquet"
    frame.to_parquet(path)

    pdt.assert_frame_equal(read_table(path), frame)
    pdt.assert_frame_equal(read_table(path, columns=["region"]), frame[["region"]])


@pytest.mark.parametrize("name", ["events.jsonl", "events.ndjson", "events.jsonl.gz"])
def test_json_lines_files_read_back(tmp_path: Path, frame: pd.DataFrame, name: str) -> None:
    path = tmp_path / name
    frame.to_json(path, orient="records", lines=True, compression="infer")

    pdt.assert_frame_equal(read_table(path), frame)


def test_format_can_be_forced_for_odd_names(tmp_path: Path, frame: pd.DataFrame) -> None:
    path = tmp_path / "export.csv"
    frame.to_json(path, orient="records", lines=True)

    pdt.assert_frame_equal(read_table(path, format="jsonl"), frame)


@pytest.mark.parametrize("name", ["sales.xls", "sales", "sales.parquet.gz"])
def test_unknown_extensions_are_refused_with_the_known_ones(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("x")

    with pytest.raises(ReportError, match="unknown table format") as caught:
        read_table(path)

    assert str(caught.value).startswith(f"{path}: ")
    assert ".csv" in str(caught.value) and ".parquet" in str(caught.value)


def test_missing_files_name_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"

    with pytest.raises(ReportError, match=f"^{path}: no such file$"):
        read_table(path)
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    with pytest.raises(ReportError, match="not a file"):
        read_table(folder)


@pytest.mark.parametrize(("name", "content"), [("bad.parquet", b"not parquet"), ("bad.csv.gz", b"not gzip")])
def test_unreadable_content_is_a_report_error(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)

    with pytest.raises(ReportError, match=f"^{path}: cannot read as"):
        read_table(path)


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A "data" bucket on the real S3 endpoint (moto's server over HTTP), which read_table finds through
    AWS_ENDPOINT_URL like any S3-compatible store."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=s3_endpoint)
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket="data")
    return client


def test_s3_objects_are_read_through_boto3(s3: Any, frame: pd.DataFrame) -> None:
    body = gzip.compress(frame.to_csv(index=False).encode())
    s3.put_object(Bucket="data", Key="daily/sales.csv.gz", Body=body)

    pdt.assert_frame_equal(read_table("s3://data/daily/sales.csv.gz"), frame)


def test_missing_s3_objects_name_the_url(s3: Any) -> None:
    with pytest.raises(ReportError, match=r"^s3://data/missing\.parquet: no such object"):
        read_table("s3://data/missing.parquet")
    with pytest.raises(ReportError, match="expected s3://bucket/key"):
        read_table("s3://data.csv")


@pytest.fixture
def database(tmp_path: Path) -> str:
    path = tmp_path / "db.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("create table sales (region text, revenue real, orders integer)")
        conn.executemany(
            "insert into sales values (?, ?, ?)", [("North", 1.5, 1), ("South", 2.25, 2), ("East", None, 3)]
        )
    conn.close()
    return f"sqlite:///{path}"


def test_sql_queries_return_frames_with_bound_parameters(database: str, frame: pd.DataFrame) -> None:
    pdt.assert_frame_equal(read_sql("select * from sales order by orders", database), frame)

    some = read_sql("select region from sales where orders >= :least order by orders", database, {"least": 2})

    assert some["region"].tolist() == ["South", "East"]


def test_bad_sql_is_a_report_error_naming_the_database(database: str) -> None:
    with pytest.raises(ReportError) as caught:
        read_sql("select nope from sales", database)

    message = str(caught.value)
    assert message.startswith(f"{database}: query failed:")
    assert "no such column: nope" in message
    assert "select nope from sales" in message


def test_database_urls_never_show_their_password() -> None:
    with pytest.raises(ReportError) as caught:
        read_sql("select 1", "postgresql://reporter:s3cret@127.0.0.1:1/db")

    assert "s3cret" not in str(caught.value)
    assert "reporter:***@127.0.0.1:1/db" in str(caught.value)


def test_malformed_database_urls_are_refused() -> None:
    with pytest.raises(ReportError, match="not a database URL"):
        read_sql("select 1", "not a url")
