"""Artifacts: the files a run produces, kept under ``runs/<function>/<run id>/<name>`` in an artifact store.

store.py    the store interface, name rules and the local-folder store
s3.py       the S3 store (boto3 only; any endpoint: AWS, MinIO, R2, moto)
writer.py   ``context.artifacts`` in the child process: writing a run's files
stores.py   a run's artifacts seen from outside the run: which store, links, one store per URL per process
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ..errors import ConfigError
from .store import (
    _BUCKET,
    CHUNK_SIZE,
    MAX_NAME_BYTES,
    ArtifactInfo,
    ArtifactNotFound,
    ArtifactStore,
    Data,
    LocalStore,
    Readable,
    attachment,
    guess_content_type,
    run_key,
    validate_name,
)

__all__ = [
    "CHUNK_SIZE",
    "MAX_NAME_BYTES",
    "ArtifactInfo",
    "ArtifactNotFound",
    "ArtifactStore",
    "Data",
    "LocalStore",
    "Readable",
    "attachment",
    "guess_content_type",
    "open_store",
    "run_key",
    "validate_name",
]


def open_store(url: str, *, endpoint_url: str | None = None) -> ArtifactStore:
    """``s3://bucket/prefix`` -> S3Store; ``file:///path`` or a plain path -> LocalStore."""
    if "://" not in url:
        return LocalStore(url)
    parts = urlsplit(url)
    if parts.scheme == "file":
        return LocalStore(parts.path)
    if parts.scheme != "s3":
        raise ConfigError(f"Artifact store {url!r} is not supported: use 's3://bucket/prefix' or a folder path.")
    if not _BUCKET.match(parts.netloc):
        raise ConfigError(f"Artifact store {url!r} has no valid bucket name: use 's3://bucket/prefix'.")
    from .s3 import S3Store  # boto3 loads only for deployments that use S3

    return S3Store(parts.netloc, parts.path.strip("/"), endpoint_url=endpoint_url)
