"""Where batch output goes: part files in a run's staging area, published atomically at the end.

Layout in the artifact store, for the run that commits (a standalone run, or the parent of a fan-out)::

    runs/<fn>/<run>/_staging/output/<col=value/...>part-<slice>-<chunk>.<ext>   one file per chunk (and partition)
    runs/<fn>/<run>/_staging/rejects/part-<slice>-<chunk>.jsonl                rejected rows with their reason
    runs/<fn>/<run>/output/...            after the commit; output/_SUCCESS (a JSON manifest) is written last
    runs/<fn>/<run>/rejects.jsonl         every rejected row, concatenated in chunk order

A part's name depends only on (slice, chunk), so redoing a chunk overwrites its part instead of adding one.
Every put is atomic (a local temp file and ``os.replace``, an S3 PUT), so a part is either whole or absent.
Nothing under ``_staging/`` is ever listed on the run or served by the API.

Commit: on a local store the staging folder is renamed onto ``output/`` (one atomic rename). On S3, where there
is no rename, each part is copied server-side to its final key, ``output/_SUCCESS`` is written last, and only
then is the staging prefix deleted; the run lists its outputs only once committed (the run record is the
source of truth; readers of the raw bucket wait for ``_SUCCESS``). Both are idempotent: a retry that finds the
manifest skips the copy; one that finds no staging folder knows the rename happened.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa

from ..artifacts import ArtifactInfo, ArtifactNotFound, ArtifactStore, LocalStore, guess_content_type
from ..artifacts.stores import download_path
from ..errors import InvalidInput

EXTENSIONS: dict[str, str] = {"parquet": "parquet", "csv": "csv", "jsonl": "jsonl"}
MANIFEST = "_SUCCESS"
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
_PART = re.compile(r"(?:^|/)part-(\d{5})-(\d{6})\.[a-z]+$")


def part_name(slice_index: int, chunk: int, fmt: str) -> str:
    return f"part-{slice_index:05d}-{chunk:06d}.{EXTENSIONS[fmt]}"


def _partition_value(value: Any) -> str:
    """Hive-style folder value: ``None``/NaN is Hive's default partition, anything else escaped for a path."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NULL_PARTITION
    if isinstance(value, datetime | date):
        value = value.isoformat()
    text = str(value)
    return quote(text, safe="-_.~ ") if text else NULL_PARTITION


def write_table(table: pa.Table, fmt: str, path: Path) -> None:
    """One part file; JSON Lines goes through pandas (dates as ISO strings)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    elif fmt == "csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, path)
    elif fmt == "jsonl":
        table.to_pandas().to_json(path, orient="records", lines=True, date_format="iso")
    else:  # pragma: no cover - checked by Batch
        raise ValueError(fmt)


def split_partitions(table: pa.Table, columns: Sequence[str]) -> Iterator[tuple[str, pa.Table]]:
    """``(folder, rows)`` per distinct value of ``columns``; the columns move from the file to the folder name."""
    if not columns:
        yield "", table
        return
    keys = table.select(list(columns)).to_pandas()
    rest = table.drop_columns(list(columns))
    groups = keys.groupby(list(columns), dropna=False, sort=True).indices
    for key, rows in groups.items():
        values = key if isinstance(key, tuple) else (key,)
        folder = "/".join(f"{c}={_partition_value(v)}" for c, v in zip(columns, values, strict=True))
        yield folder + "/", rest.take(pa.array(rows))


class Staging:
    """The staging area of the run at ``prefix`` (``runs/<fn>/<run>/``) in ``store``."""

    def __init__(self, store: ArtifactStore, prefix: str) -> None:
        self.store = store
        self.prefix = prefix
        self.root = prefix + "_staging/"

    def put(self, name: str, path: Path) -> ArtifactInfo:
        """Store one staged file (durable when this returns)."""
        return self.store.put(self.root + name, path, guess_content_type(name))

    def staged(self, area: str) -> list[str]:
        """Names (relative to the staging root) of the staged files under ``area`` (``output`` or ``rejects``)."""
        return [info.name[len(self.root) :] for info in self.store.list(f"{self.root}{area}/")]

    def discard(self, slice_index: int, from_chunk: int) -> int:
        """Delete this slice's parts of chunks ``>= from_chunk``: leftovers of an attempt that died mid-chunk."""
        doomed = []
        for name in self.staged("output") + self.staged("rejects"):
            match = _PART.search(name)
            if match and int(match[1]) == slice_index and int(match[2]) >= from_chunk:
                doomed.append(name)
        for name in doomed:
            self.store.delete_prefix(self.root + name)
        return len(doomed)

    # -- the commit ------------------------------------------------------------------------------------

    def concatenate(self, area: str, target: Path) -> int:
        """Concatenate the staged files of ``area`` (JSON Lines parts) in name order into ``target``; rows."""
        lines = 0
        with target.open("wb") as out:
            for name in sorted(self.staged(area)):
                for chunk in self.store.open(self.root + name):
                    out.write(chunk)
                    lines += chunk.count(b"\n")
        return lines

    def committed(self, area: str = "output") -> bool:
        with contextlib.suppress(ArtifactNotFound, InvalidInput):
            self.store.stat(f"{self.prefix}{area}/{MANIFEST}")
            return True
        return False

    def publish(self, manifest: dict[str, Any], area: str = "output") -> None:
        """Move ``_staging/<area>/`` to ``<area>/`` and write the manifest last; safe to repeat after a crash."""
        if not self.committed(area):
            self.store.promote(f"{self.root}{area}", f"{self.prefix}{area}")
            parts = [info.name[len(self.prefix) + len(area) + 1 :] for info in self.store.list(f"{self.prefix}{area}/")]
            body = json.dumps({**manifest, "parts": parts}, indent=1).encode()
            self.store.put(f"{self.prefix}{area}/{MANIFEST}", body, "application/json")
        with contextlib.suppress(InvalidInput):
            self.store.delete_prefix(self.root)
        if isinstance(self.store, LocalStore):  # folders emptied by the rename or the delete
            for base in (self.store.root, self.store.root / self.store.META / "meta"):
                shutil.rmtree(base / self.root, ignore_errors=True)

    def published(self, area: str) -> list[ArtifactInfo]:
        return self.store.list(f"{self.prefix}{area}/")


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    """A private temporary folder for one chunk's files (gone when the chunk is staged)."""
    with tempfile.TemporaryDirectory(prefix="backburner-batch-") as folder:
        yield Path(folder)


def register(writer: Any, infos: list[ArtifactInfo], prefix: str) -> None:
    """List committed files on the run (written by earlier attempts too, so not in this attempt's list)."""
    names = {info.name[len(prefix) :]: info for info in infos}
    kept = [entry for entry in writer.written if entry["name"] not in names]
    writer.written = kept + [
        {
            "name": name,
            "size": info.size,
            "content_type": guess_content_type(name),
            "url": download_path(writer.run_id, name),
        }
        for name, info in names.items()
    ]
