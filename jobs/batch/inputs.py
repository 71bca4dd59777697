"""Opening batch input files as Arrow streams: local files directly, S3 objects through boto3 (streamed for
CSV and JSON Lines, spooled to a temporary file for Parquet, which needs random access; never held in memory)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

COMPRESSED = (".gz", ".bz2", ".zst", ".lz4")


def _s3() -> Any:
    """A boto3 client for sources, at the same endpoint as the artifact store."""
    from ..artifacts.s3 import s3_client  # boto3 loads only for sources on S3

    return s3_client(retries={"mode": "standard"})


def _split_s3(url: str) -> tuple[str, str]:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    if not bucket:
        raise ValueError(f"Expected s3://bucket/key, got {url!r}.")
    return bucket, key


def s3_list(url: str, known: Callable[[str], bool]) -> list[str]:
    bucket, prefix = _split_s3(url)
    pages = _s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
    return [f"s3://{bucket}/{key}" for key in sorted(keys) if known(key)]


@contextlib.contextmanager
def open_input(location: str, *, seekable: bool) -> Iterator[Any]:
    """An Arrow input for a file: local files directly; S3 streamed, or spooled to disk when ``seekable``."""
    import pyarrow as pa

    if not location.startswith("s3://"):
        with pa.input_stream(location, compression="detect") if not seekable else pa.memory_map(location) as f:
            yield f
        return
    bucket, key = _split_s3(location)
    client = _s3()
    if seekable:
        with tempfile.TemporaryDirectory(prefix="backburner-batch-") as folder:
            path = os.path.join(folder, "object")
            client.download_file(bucket, key, path)
            with pa.memory_map(path) as f:
                yield f
        return
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        stream = pa.PythonFile(body, mode="r")
        compression = pa.Codec.detect(key) if any(key.endswith(s) for s in COMPRESSED) else None
        yield pa.CompressedInputStream(stream, compression.name) if compression else stream
    finally:
        body.close()
