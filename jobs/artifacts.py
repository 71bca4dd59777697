"""The artifact store: files a run produces, kept under ``runs/<function>/<run id>/<name>``.

Two backends with one interface: a local folder (the default, for ``dev`` and single hosts) and S3 through
boto3 (AWS, MinIO, R2, any endpoint). Keys are validated relative POSIX paths on both, so a name that works
locally works on S3 and the other way round, and nothing can write outside the store.
"""

from __future__ import annotations

import contextlib
import io
import json
import mimetypes
import os
import re
import tempfile
import threading
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol, cast
from urllib.parse import urlsplit

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

from jobs.errors import BackburnerError, ConfigError, DeliveryError, InvalidInput

CHUNK_SIZE = 1024 * 1024
MAX_NAME_BYTES = 1024
_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_DRIVE = re.compile(r"^[A-Za-z]:")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_TYPES = {
    ".parquet": "application/vnd.apache.parquet",
    ".jsonl": "application/jsonl",
    ".ndjson": "application/x-ndjson",
    ".csv": "text/csv",
    ".md": "text/markdown",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_MIME = mimetypes.MimeTypes()  # built-in table only: the same answers on every host, whatever /etc says


class Readable(Protocol):
    """Any binary stream: an open file, a pipe, a socket file, a BytesIO."""

    def read(self, size: int = ..., /) -> bytes: ...


Data = bytes | Readable | Path


class ArtifactNotFound(BackburnerError):
    """Raised when a store has no object under the requested key."""

    status = 404
    code = "artifact_not_found"


def validate_name(name: str) -> str:
    """Return ``name`` (NFC-normalised) if it is a safe relative POSIX path, else raise InvalidInput.

    The same rules hold on every backend, so an artifact can never escape the run's folder or mean
    different things on S3 and on disk.
    """

    def refuse(rule: str) -> InvalidInput:
        shown = repr(name) if len(name) <= 80 else repr(name[:80]) + "..."
        return InvalidInput(f"Artifact name {shown} is not allowed: {rule}.")

    if not name:
        raise refuse("it is empty")
    name = unicodedata.normalize("NFC", name)
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise refuse(f"it is longer than {MAX_NAME_BYTES} bytes")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise refuse("it contains a control character (such as NUL or a newline)")
    if "\\" in name:
        raise refuse("it contains a backslash; use '/' to separate folders")
    if name.startswith("/") or _DRIVE.match(name):
        raise refuse("it is an absolute path; use a relative path like 'reports/summary.csv'")
    if name.endswith("/"):
        raise refuse("it ends with '/'; name a file, not a folder")
    for segment in name.split("/"):
        if segment == "..":
            raise refuse("it contains a '..' segment")
        if segment == ".":
            raise refuse("it contains a '.' segment")
        if segment == "":
            raise refuse("it contains an empty segment ('//')")
    return name


def _validate_prefix(prefix: str, *, allow_empty: bool) -> str:
    """A key prefix: a valid name, optionally ending in '/', or '' when listing everything."""
    if prefix == "":
        if allow_empty:
            return ""
        raise InvalidInput("An empty prefix would delete the whole store; name a prefix such as 'runs/<fn>/'.")
    stem = prefix[:-1] if prefix.endswith("/") else prefix
    return validate_name(stem) + ("/" if prefix.endswith("/") else "")


def run_key(function: str, run_id: str, name: str) -> str:
    """The store key of a run's artifact: ``runs/<function>/<run id>/<validated name>``."""
    if not _FUNCTION_NAME.match(function or ""):
        raise InvalidInput(f"Function name {function!r} is not allowed: use letters, digits, '_' and '-'.")
    try:
        one_segment = "/" not in run_id and validate_name(run_id) == run_id
    except InvalidInput:
        one_segment = False
    if not one_segment:
        raise InvalidInput(f"Run id {run_id!r} is not allowed: it must be one path segment.")
    return f"runs/{function}/{run_id}/{validate_name(name)}"


def guess_content_type(name: str) -> str:
    """The MIME type for a name's extension; compressed files are their archive type, not the inner one."""
    suffix = Path(name).suffix.lower()
    if suffix in _TYPES:
        return _TYPES[suffix]
    kind, encoding = _MIME.guess_type(name, strict=False)
    if encoding == "gzip":
        return "application/gzip"
    if encoding is not None or kind is None:
        return "application/octet-stream"
    return kind


@dataclass(frozen=True)
class ArtifactInfo:
    name: str
    size: int
    content_type: str


class ArtifactStore(ABC):
    """Where artifacts live. Keys are store-relative (``runs/...``) and validated by every method.

    ``put`` takes bytes, a binary file object (read to its end) or a path. ``open`` streams chunks and raises
    ArtifactNotFound before the first one. ``presigned_url`` is None where the store cannot make links.
    ``delete_prefix`` (retention) and ``list`` match a string prefix, as S3 does; ``list`` is sorted by key.
    """

    url: str

    @abstractmethod
    def put(self, key: str, data: Data, content_type: str) -> ArtifactInfo: ...
    @abstractmethod
    def open(self, key: str) -> Iterator[bytes]: ...
    @abstractmethod
    def stat(self, key: str) -> ArtifactInfo: ...
    @abstractmethod
    def presigned_url(self, key: str, expires_s: int = 3600) -> str | None: ...
    @abstractmethod
    def delete_prefix(self, prefix: str) -> int: ...
    @abstractmethod
    def list(self, prefix: str = "") -> list[ArtifactInfo]: ...


class LocalStore(ArtifactStore):
    """A folder. Files sit at ``<root>/<key>`` so people can browse them; content types and temp files sit
    in ``<root>/.store/``, which keys may not use. Writes are atomic: temp file, fsync, ``os.replace``."""

    META = ".store"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.url = str(self.root)

    def _path(self, key: str, base: Path | None = None) -> Path:
        key = validate_name(key)
        if base is None and key.split("/", 1)[0] == self.META:
            raise InvalidInput(f"Artifact key {key!r} is not allowed: {self.META!r} is reserved by the store.")
        path = ((base or self.root) / key).resolve()
        if not path.is_relative_to(self.root):  # e.g. a symlink inside the store that points out of it
            raise InvalidInput(f"Artifact key {key!r} resolves outside the store {self.url!r}.")
        return path

    def _meta(self, key: str) -> Path:
        return self._path(key + ".json", self.root / self.META / "meta")

    def _write(self, path: Path, data: Data) -> int:
        tmp_dir = self.root / self.META / "tmp"  # same file system as the target, so os.replace is atomic
        for folder in (tmp_dir, path.parent):
            folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=tmp_dir)
        try:
            with os.fdopen(fd, "wb") as out:
                size = _copy(data, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
            return size
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def put(self, key: str, data: Data, content_type: str) -> ArtifactInfo:
        path, meta = self._path(key), self._meta(key)
        size = self._write(path, data)
        self._write(meta, json.dumps({"content_type": content_type}).encode())
        return ArtifactInfo(validate_name(key), size, content_type)

    def open(self, key: str) -> Iterator[bytes]:
        try:
            handle = self._path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ArtifactNotFound(f"No artifact {key!r} in {self.url!r}.") from None
        return _chunks(handle)

    def stat(self, key: str) -> ArtifactInfo:
        path = self._path(key)
        if not path.is_file():
            raise ArtifactNotFound(f"No artifact {key!r} in {self.url!r}.")
        try:
            content_type = str(json.loads(self._meta(key).read_bytes())["content_type"])
        except (OSError, ValueError, KeyError, TypeError):
            content_type = guess_content_type(key)
        return ArtifactInfo(validate_name(key), path.stat().st_size, content_type)

    def presigned_url(self, key: str, expires_s: int = 3600) -> str | None:
        return None

    def _keys(self, prefix: str) -> Iterator[str]:
        for dirpath, dirnames, filenames in os.walk(self.root / prefix.rpartition("/")[0]):
            here = Path(dirpath).relative_to(self.root).as_posix()
            if here == ".":
                dirnames[:] = [d for d in dirnames if d != self.META]
            for filename in filenames:
                key = filename if here == "." else f"{here}/{filename}"
                if key.startswith(prefix):
                    yield key

    def delete_prefix(self, prefix: str) -> int:
        count = 0
        for key in list(self._keys(_validate_prefix(prefix, allow_empty=False))):
            with contextlib.suppress(FileNotFoundError):
                self._path(key).unlink()
                count += 1
            with contextlib.suppress(FileNotFoundError):
                self._meta(key).unlink()
        return count

    def list(self, prefix: str = "") -> list[ArtifactInfo]:
        return [self.stat(key) for key in sorted(self._keys(_validate_prefix(prefix, allow_empty=True)))]


def _copy(data: Data, out: BinaryIO) -> int:
    if isinstance(data, bytes | bytearray | memoryview):
        return out.write(data)
    if isinstance(data, Path):
        with data.open("rb") as source:
            return _copy(source, out)
    size = 0
    while chunk := data.read(CHUNK_SIZE):
        size += out.write(chunk)
    return size


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK_SIZE):
            yield chunk


class _Counting(io.RawIOBase):
    """A non-seekable read-through wrapper that counts bytes, so a stream's size is known after upload."""

    def __init__(self, inner: Readable) -> None:
        self.inner, self.count = inner, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        chunk = self.inner.read(-1 if size is None else size)
        self.count += len(chunk)
        return chunk


class S3Store(ArtifactStore):
    """An S3 bucket (optionally under a prefix) through boto3; any endpoint: AWS, MinIO, R2, moto.

    The client is made lazily, once, under a lock: stores are shared by worker threads. Timeouts and retries
    are bounded so a dead store fails a delivery in seconds, not minutes.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        multipart_threshold: int = 8 * 1024 * 1024,
        multipart_chunksize: int = 8 * 1024 * 1024,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_attempts: int = 5,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.endpoint_url = endpoint_url
        has_endpoint = bool(endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"))
        self._config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"} if has_endpoint else {},
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )
        self._transfer = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunksize,
            preferred_transfer_client="classic",
        )
        self._s3: Any = None
        self._lock = threading.Lock()

    def _client(self) -> Any:
        if self._s3 is None:
            with self._lock:
                if self._s3 is None:
                    session = boto3.session.Session()  # own session: the default one is not thread-safe
                    self._s3 = session.client("s3", endpoint_url=self.endpoint_url, config=self._config)
        return self._s3

    def _key(self, key: str) -> str:
        key = validate_name(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _name(self, full_key: str) -> str:
        return full_key[len(self.prefix) + 1 :] if self.prefix else full_key

    @contextlib.contextmanager
    def _guard(self, action: str, key: str) -> Iterator[None]:
        """Turn botocore's exceptions into Backburner's, with messages that say where and what to fix."""
        try:
            yield
        except (NoCredentialsError, PartialCredentialsError):
            raise ConfigError(
                f"No usable AWS credentials for the artifact store {self.url}: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (plus AWS_SESSION_TOKEN for temporary ones), or AWS_PROFILE, "
                "or give the host an instance/task role."
            ) from None
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in {"404", "NoSuchKey", "NotFound"}:
                raise ArtifactNotFound(f"No artifact {key!r} in {self.url}.") from None
            hint = " (create the bucket first)" if code == "NoSuchBucket" else ""
            message = f"{code} {error.get('Message', '')}".strip() + hint
            raise DeliveryError(f"S3 store {self._where()} refused to {action} {key!r}: {message}") from exc
        except (BotoCoreError, S3UploadFailedError) as exc:
            raise DeliveryError(f"S3 store {self._where()} could not {action} {key!r}: {exc}") from exc

    def _where(self) -> str:
        endpoint = self._s3.meta.endpoint_url if self._s3 is not None else self.endpoint_url or "AWS"
        return f"at {endpoint} (bucket {self.bucket!r})"

    def put(self, key: str, data: Data, content_type: str) -> ArtifactInfo:
        full = self._key(key)
        counting: _Counting | None = None
        source: BinaryIO
        with self._guard("upload", key), contextlib.ExitStack() as stack:
            if isinstance(data, bytes | bytearray | memoryview):
                source, size = io.BytesIO(data), len(data)
            elif isinstance(data, Path):
                source, size = stack.enter_context(data.open("rb")), data.stat().st_size
            else:
                counting = _Counting(data)
                source, size = cast(BinaryIO, counting), 0
            extra = {"ContentType": content_type}
            self._client().upload_fileobj(source, self.bucket, full, ExtraArgs=extra, Config=self._transfer)
        size = counting.count if counting is not None else size
        return ArtifactInfo(self._name(full), size, content_type)

    def open(self, key: str) -> Iterator[bytes]:
        with self._guard("download", key):
            body = self._client().get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        return self._stream(body, key)

    def _stream(self, body: Any, key: str) -> Iterator[bytes]:
        try:
            with self._guard("download", key):
                yield from body.iter_chunks(CHUNK_SIZE)
        finally:
            body.close()

    def stat(self, key: str) -> ArtifactInfo:
        with self._guard("stat", key):
            head = self._client().head_object(Bucket=self.bucket, Key=self._key(key))
        return ArtifactInfo(validate_name(key), int(head["ContentLength"]), str(head.get("ContentType", "")))

    def presigned_url(self, key: str, expires_s: int = 3600) -> str | None:
        """A SigV4 GET link; S3 caps it at 7 days (and at the session's expiry for temporary credentials)."""
        expires = max(1, min(int(expires_s), 7 * 24 * 3600))
        with self._guard("sign", key):
            params = {"Bucket": self.bucket, "Key": self._key(key)}
            return str(self._client().generate_presigned_url("get_object", Params=params, ExpiresIn=expires))

    def _objects(self, prefix: str) -> Iterator[dict[str, Any]]:
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        for page in self._client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
            yield from page.get("Contents", [])

    def delete_prefix(self, prefix: str) -> int:
        prefix = _validate_prefix(prefix, allow_empty=False)
        deleted = 0
        with self._guard("delete", prefix):
            keys = [obj["Key"] for obj in self._objects(prefix)]
            for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
                batch = [{"Key": k} for k in keys[start : start + 1000]]
                answer = self._client().delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
                if errors := answer.get("Errors"):
                    raise DeliveryError(
                        f"S3 store {self._where()} could not delete {errors[0].get('Key')!r}: "
                        f"{errors[0].get('Code')} {errors[0].get('Message', '')}"
                    )
                deleted += len(batch)
        return deleted

    def list(self, prefix: str = "") -> list[ArtifactInfo]:
        """Listed content types are guessed from names (ListObjects does not return them); stat() is exact."""
        prefix = _validate_prefix(prefix, allow_empty=True)
        with self._guard("list", prefix):
            objects = list(self._objects(prefix))
        infos = [ArtifactInfo(self._name(o["Key"]), int(o["Size"]), guess_content_type(o["Key"])) for o in objects]
        return sorted(infos, key=lambda info: info.name)


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
    return S3Store(parts.netloc, parts.path.strip("/"), endpoint_url=endpoint_url)
