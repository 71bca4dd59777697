"""Batch sources, read as a stream of Arrow tables of exactly ``chunk_rows`` rows (the last may be shorter).

Chunk k is the same rows on every attempt whatever the reader's block size, which is what lets a retried
attempt resume at chunk k. Only one chunk (plus the reader's read-ahead) is in memory at a time: CSV and JSON
Lines go through pyarrow's streaming readers, Parquet through ``iter_batches`` (skipping whole row groups when
resuming), SQL through a server-side cursor. S3 objects are streamed (CSV, JSON Lines) or downloaded to a
temporary file (Parquet needs random access), never held in memory.
"""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from .errors import BatchError
from .inputs import COMPRESSED, open_input, s3_list

Format = Literal["csv", "jsonl", "parquet"]
_FORMATS: dict[str, Format] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


@dataclass(frozen=True)
class SQL:
    """A SQL source: ``query`` (with ``:name`` placeholders for ``params``) on a SQLAlchemy ``url``.

    Give it an ``ORDER BY``: chunks are only stable across retries if the rows come in the same order.
    """

    query: str
    url: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReadOptions:
    """How files are parsed. Types are inferred from the first block; name any column that could be
    inferred too narrowly (an id that is sometimes ``"A17"``) in ``column_types``, e.g. ``{"id": "string"}``.
    ``block_size`` is the CSV/JSON reader's unit of work; it reads a few blocks ahead of the chunk being
    transformed, so it counts towards peak memory (1 MiB: ~330 MB peak for 100k-row chunks of 5 columns)."""

    column_types: Mapping[str, Any] | None = None
    columns: Sequence[str] | None = None
    delimiter: str | None = None
    block_size: int = 1 << 20


Source = str | os.PathLike[str] | SQL | Sequence[str | os.PathLike[str]]


def file_format(location: str) -> Format:
    """The format of a file from its extension (``.csv``, ``.csv.gz``, ``.jsonl``, ``.parquet``...)."""
    name = location.split("?", 1)[0].lower()
    for suffix in COMPRESSED:
        name = name.removesuffix(suffix)
    fmt = _FORMATS.get(Path(name).suffix)
    if fmt is None:
        raise BatchError(f"Cannot tell the format of {location!r}: name it .csv, .jsonl or .parquet.", retriable=False)
    return fmt


def resolve(source: Source) -> list[str] | SQL:
    """The files a source names, in a stable order: a path, a glob, a folder, ``s3://bucket/key``, an
    ``s3://bucket/prefix/`` (every object under it), or a list of these."""
    if isinstance(source, SQL):
        return source
    if isinstance(source, str | os.PathLike):
        items: Sequence[str | os.PathLike[str]] = [source]
    else:
        items = source
    found: list[str] = []
    for item in items:
        text = os.fspath(item)
        if text.startswith("s3://"):
            found += s3_list(text, _known) if text.endswith("/") else [text]
        elif glob.has_magic(text):
            found += sorted(p for p in glob.glob(text, recursive=True) if Path(p).is_file())
        elif Path(text).is_dir():
            found += sorted(str(p) for p in Path(text).rglob("*") if p.is_file() and _known(p.name))
        elif Path(text).is_file():
            found.append(text)
        else:
            raise BatchError(f"Source {text!r} does not exist.")
    if not found:
        raise BatchError(f"Source {source!r} names no files.")
    for location in found:
        file_format(location)
    return found


def _known(name: str) -> bool:
    try:
        file_format(name)
    except BatchError:
        return False
    return True


# -- reading -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Skipped:
    """Rows a reader passed over without decoding them (whole Parquet row groups before a resume point)."""

    rows: int


def _record_batches(location: str, options: ReadOptions, skip: int) -> Iterator[pa.RecordBatch | _Skipped]:
    """Record batches of one file; Parquet skips whole row groups before ``skip`` (the caller slices the rest)."""
    fmt = file_format(location)
    if fmt == "parquet":
        yield from _parquet(location, options, skip)
    elif fmt == "csv":
        yield from _csv(location, options)
    else:
        yield from _jsonl(location, options)


def _parquet(location: str, options: ReadOptions, skip: int) -> Iterator[pa.RecordBatch | _Skipped]:
    import pyarrow.parquet as pq

    with open_input(location, seekable=True) as f:
        parquet = pq.ParquetFile(f)
        meta = parquet.metadata
        first, skipped = 0, 0
        while first < meta.num_row_groups and skipped + meta.row_group(first).num_rows <= skip:
            skipped += meta.row_group(first).num_rows
            first += 1
        if skipped:
            yield _Skipped(skipped)
        groups = list(range(first, meta.num_row_groups))
        if groups:
            columns = list(options.columns) if options.columns else None
            yield from parquet.iter_batches(batch_size=65536, row_groups=groups, columns=columns)


def _csv(location: str, options: ReadOptions) -> Iterator[pa.RecordBatch]:
    import pyarrow.csv as pacsv

    delimiter = options.delimiter or ("\t" if ".tsv" in location.lower() else ",")
    types = dict(options.column_types or {})
    for pass_ in (1, 2):
        with open_input(location, seekable=False) as stream, _first_block(location):
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(block_size=options.block_size),
                parse_options=pacsv.ParseOptions(delimiter=delimiter),
                convert_options=pacsv.ConvertOptions(
                    column_types=types, include_columns=list(options.columns) if options.columns else None
                ),
            )
            nulls = [f.name for f in reader.schema if pa.types.is_null(f.type) and f.name not in types]
            if nulls and pass_ == 1:  # empty in the first block: read as text rather than fail later
                types.update(dict.fromkeys(nulls, pa.string()))
                continue
            yield from _typed(reader, location)
            return


def _jsonl(location: str, options: ReadOptions) -> Iterator[pa.RecordBatch]:
    import pyarrow.json as pajson

    types = (options.column_types or {}).items()
    schema = pa.schema([(name, pa.type_for_alias(t) if isinstance(t, str) else t) for name, t in types])
    with open_input(location, seekable=False) as stream:
        with _first_block(location):
            reader = pajson.open_json(
                stream,
                read_options=pajson.ReadOptions(block_size=options.block_size),
                parse_options=pajson.ParseOptions(explicit_schema=schema if len(schema) else None),
            )
        for batch in _typed(reader, location):
            yield batch.select(list(options.columns)) if options.columns else batch


@contextlib.contextmanager
def _first_block(location: str) -> Iterator[None]:
    """Opening a reader parses the file's first block: its errors name the file too, as later blocks' do."""
    try:
        yield
    except pa.ArrowInvalid as exc:
        raise BatchError(
            f"{location}: {exc}. The first block does not parse as given: check column_types (e.g. "
            "{'amount': 'float64'} or {'code': 'string'}) and that the file is what its name says.",
            retriable=False,
        ) from exc


def _typed(reader: Any, location: str) -> Iterator[pa.RecordBatch]:
    try:
        yield from reader
    except pa.ArrowInvalid as exc:
        raise BatchError(
            f"{location}: {exc}. Types are inferred from the first block of the file; name the column's type "
            "in column_types (e.g. {'amount': 'float64'} or {'code': 'string'}).",
            retriable=False,
        ) from exc


def _sql(source: SQL, chunk_rows: int) -> Iterator[pa.Table]:
    import pandas as pd
    import sqlalchemy as sa
    from sqlalchemy.exc import SQLAlchemyError

    try:
        shown = sa.make_url(source.url).render_as_string(hide_password=True)
    except (SQLAlchemyError, ValueError) as exc:
        raise BatchError(f"SQL source: not a database URL ({exc})", retriable=False) from None
    try:
        engine = sa.create_engine(source.url)
    except (SQLAlchemyError, ImportError) as exc:  # a driver that is not installed, say
        raise BatchError(f"SQL source {shown}: cannot open the database: {exc}", retriable=False) from exc
    try:
        with engine.connect().execution_options(stream_results=True, max_row_buffer=chunk_rows) as conn:
            frames = pd.read_sql_query(sa.text(source.query), conn, params=dict(source.params), chunksize=chunk_rows)
            for frame in frames:
                yield pa.Table.from_pandas(frame, preserve_index=False)
    except (SQLAlchemyError, pd.errors.DatabaseError) as exc:
        cause = exc.__cause__ if isinstance(exc, pd.errors.DatabaseError) and exc.__cause__ else exc
        detail = str(getattr(cause, "orig", None) or cause).splitlines()[0]
        raise BatchError(f"SQL source {shown}: query failed: {detail}\n  query: {source.query.strip()[:500]}") from exc
    finally:
        engine.dispose()


def chunks(
    source: list[str] | SQL, chunk_rows: int, options: ReadOptions, *, start: int = 0, stop: int | None = None
) -> Iterator[pa.Table]:
    """Rows ``start`` to ``stop`` of the source (its files one after another), in tables of ``chunk_rows``."""
    if chunk_rows < 1:
        raise BatchError(f"chunk_rows must be at least 1, got {chunk_rows}.", retriable=False)
    pending: list[pa.Table] = []
    held = 0
    position = 0  # rows of the source passed so far
    for batch in _all_batches(source, chunk_rows, options, start):
        if isinstance(batch, _Skipped):
            position += batch.rows
            continue
        size = batch.num_rows
        lo, hi = max(start - position, 0), size if stop is None else min(size, stop - position)
        position += size
        if hi > lo:
            table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
            pending.append(table.slice(lo, hi - lo))
            held += hi - lo
        while held >= chunk_rows:
            table = _concat(pending)
            yield table.slice(0, chunk_rows)
            rest = table.slice(chunk_rows)
            pending, held = ([rest] if rest.num_rows else []), rest.num_rows
        if stop is not None and position >= stop:
            break
    if held:
        yield _concat(pending)


def _concat(tables: list[pa.Table]) -> pa.Table:
    """One table (zero-copy); files whose schemas differ a little (a column missing, int vs float) are unified."""
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")


def _all_batches(source: list[str] | SQL, chunk_rows: int, options: ReadOptions, skip: int) -> Iterator[Any]:
    if isinstance(source, SQL):
        yield from _sql(source, chunk_rows)
        return
    for location in source:
        yield from _record_batches(location, options, skip if len(source) == 1 else 0)


def count_rows(location: str, options: ReadOptions) -> int:
    """Rows in one file: free for Parquet (metadata), one streaming pass for CSV and JSON Lines."""
    if file_format(location) == "parquet":
        import pyarrow.parquet as pq

        with open_input(location, seekable=True) as f:
            return int(pq.ParquetFile(f).metadata.num_rows)
    return sum(b.num_rows for b in _record_batches(location, options, 0) if not isinstance(b, _Skipped))
