"""Reading frames from files, S3 objects and SQL databases, with errors that name the source.

Heavy or optional clients (boto3, SQLAlchemy) are imported only when a source needs them.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from reports.errors import ReportError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

TableFormat = Literal["csv", "tsv", "parquet", "jsonl"]
_SUFFIXES: dict[str, TableFormat] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip", ".zst": "zstd"}


def detect_format(name: str) -> tuple[TableFormat, str | None]:
    """The table format and compression of ``name`` from its extension: ``x.csv.gz`` -> (csv, gzip)."""
    suffixes = [s.lower() for s in Path(name.split("?", 1)[0]).suffixes]
    compression = _COMPRESSION.get(suffixes[-1]) if suffixes else None
    if compression:
        suffixes = suffixes[:-1]
    fmt = _SUFFIXES.get(suffixes[-1]) if suffixes else None
    if fmt is None or (fmt == "parquet" and compression):
        found = "".join(suffixes) or "(no extension)"
        known = f"{', '.join(sorted(_SUFFIXES))}, optionally compressed ({', '.join(_COMPRESSION)})"
        raise ReportError(f"unknown table format {found!r}; use {known}", source=name, retriable=False)
    return fmt, compression


def read_table(source: str | Path, *, format: TableFormat | None = None, **kwargs: Any) -> pd.DataFrame:
    """Read a CSV, TSV, Parquet or JSON Lines table from a local path or an ``s3://bucket/key`` URL.

    The format comes from the extension (``.csv``, ``.csv.gz``, ``.parquet``, ``.jsonl``...) unless
    ``format`` says otherwise. ``kwargs`` go to the pandas reader (``usecols``, ``dtype``,
    ``parse_dates``, ``columns``...). S3 objects are fetched with boto3, honouring
    ``AWS_ENDPOINT_URL`` for MinIO or R2.

    Raises:
        ReportError: the extension is unknown, the file or object is missing or unreadable, or the
            content does not parse; the message starts with the source.
    """
    name = str(source)
    detected, compression = detect_format(name)
    fmt = format or detected
    data: str | io.BytesIO
    if name.startswith("s3://"):
        data = _s3_object(name)
    else:
        path = Path(name).expanduser()
        if not path.is_file():
            raise ReportError("no such file" if not path.exists() else "not a file", source=name)
        data = str(path)
    try:
        if fmt == "parquet":
            return pd.read_parquet(data, **kwargs)
        if fmt == "jsonl":
            return pd.read_json(data, lines=True, compression=compression, **kwargs)
        sep = "\t" if fmt == "tsv" else ","
        return pd.read_csv(data, sep=kwargs.pop("sep", sep), compression=compression, **kwargs)
    except (OSError, ValueError, EOFError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        # pyarrow's ArrowInvalid is a ValueError; gzip/zlib errors are OSError or EOFError.
        raise ReportError(f"cannot read as {fmt}: {err}", source=name) from err


def _s3_client() -> Any:
    """boto3 finds the endpoint itself (``AWS_ENDPOINT_URL_S3``, else ``AWS_ENDPOINT_URL``), as the runtime's
    ``jobs.artifacts.s3.s3_client`` does; this library imports nothing from the runtime, so it repeats that
    function's one rule: path-style addressing on any endpoint but AWS's."""
    import boto3
    from botocore.config import Config

    custom = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return boto3.client("s3", config=Config(s3={"addressing_style": "path"} if custom else {}))


def _s3_object(url: str) -> io.BytesIO:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise ReportError("expected s3://bucket/key", source=url, retriable=False)
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

    try:
        client = _s3_client()
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            return io.BytesIO(body.read())
        finally:
            body.close()
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        if code in {"NoSuchKey", "404", "NoSuchBucket"}:
            raise ReportError(f"no such object ({code})", source=url) from None
        refused = code in {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}
        raise ReportError(f"cannot fetch from S3: {err}", source=url, retriable=not refused) from err
    except (NoCredentialsError, PartialCredentialsError):
        raise ReportError(
            "no usable AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (plus AWS_SESSION_TOKEN for "
            "temporary ones), or AWS_PROFILE, or give the host an instance/task role",
            source=url,
            retriable=False,
        ) from None
    except BotoCoreError as err:
        raise ReportError(f"cannot fetch from S3: {err}", source=url) from err


def read_sql(
    query: str,
    url: str | Engine,
    params: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Run ``query`` and return its rows, through SQLAlchemy.

    Args:
        query: SQL text; use ``:name`` placeholders with a mapping of ``params`` rather than
            formatting values in, so they are bound by the driver.
        url: a SQLAlchemy URL (``sqlite:///data.db``, ``postgresql+psycopg://...``); a new engine
            is made and disposed per call. Pass an ``Engine`` to reuse a pool.

    Raises:
        ReportError: the URL or driver is wrong, the database is unreachable or the SQL fails; the
            message names the database with its password hidden.
    """
    import sqlalchemy as sa
    from sqlalchemy.exc import SQLAlchemyError

    owned = isinstance(url, str)
    if isinstance(url, str):
        try:
            shown = sa.make_url(url).render_as_string(hide_password=True)
        except (SQLAlchemyError, ValueError) as err:
            raise ReportError(f"not a database URL: {err}", source=url.split("@")[-1], retriable=False) from None
        try:
            engine = sa.create_engine(url)
        except (SQLAlchemyError, ImportError) as err:
            raise ReportError(f"cannot open database: {err}", source=shown, retriable=False) from err
    else:
        engine, shown = url, url.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as conn:
            return pd.read_sql_query(sa.text(query), conn, params=params)
    except (SQLAlchemyError, pd.errors.DatabaseError) as err:
        cause = err.__cause__ if isinstance(err, pd.errors.DatabaseError) and err.__cause__ else err
        detail = str(getattr(cause, "orig", None) or cause).splitlines()[0]
        raise ReportError(f"query failed: {detail}\n  query: {query.strip()[:500]}", source=shown) from err
    finally:
        if owned:
            engine.dispose()
