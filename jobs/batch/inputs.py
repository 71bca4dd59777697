"""Opening batch input files as Arrow streams: local files directly, S3 objects through boto3 (streamed for
CSV and JSON Lines, spooled to a temporary file for Parquet, which needs random access; never held in memory)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

from .errors import BatchError

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


@contextlib.contextmanager
def _s3_errors(location: str) -> Iterator[None]:
    """botocore's errors reading a source, as BatchErrors that name it and what to do; only what may pass (an
    object not there yet, S3 not answering) is worth a retry."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

    from ..artifacts.s3 import CREDENTIALS_FIX, MISSING_CODES, client_error  # boto3 is loaded by now anyway

    try:
        yield
    except (NoCredentialsError, PartialCredentialsError):
        raise BatchError(f"Source {location}: no usable AWS credentials: {CREDENTIALS_FIX}.", retriable=False) from None
    except ClientError as exc:
        code, message = client_error(exc)
        if code in MISSING_CODES:
            raise BatchError(f"Source {location} does not exist.") from None
        refused = code in {"403", "AccessDenied", "NoSuchBucket", "InvalidAccessKeyId", "SignatureDoesNotMatch"}
        raise BatchError(f"Source {location}: S3 refused to read it: {message}", retriable=not refused) from exc
    except BotoCoreError as exc:
        raise BatchError(f"Source {location}: could not read it from S3: {exc}") from exc


def s3_list(url: str, known: Callable[[str], bool]) -> list[str]:
    bucket, prefix = _split_s3(url)
    with _s3_errors(url):
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
    with _s3_errors(location), _open_s3(location, seekable=seekable) as f:
        yield f


@contextlib.contextmanager
def _open_s3(location: str, *, seekable: bool) -> Iterator[Any]:
    import pyarrow as pa

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
