"""The S3 artifact store: boto3 only, any endpoint (AWS, MinIO, R2, moto), path-style where needed."""

from __future__ import annotations

import contextlib
import io
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

from ..errors import ConfigError, DeliveryError
from .store import (
    CHUNK_SIZE,
    ArtifactInfo,
    ArtifactNotFound,
    ArtifactStore,
    Data,
    Readable,
    _validate_prefix,
    attachment,
    guess_content_type,
    validate_name,
)


def endpoint_url() -> str | None:
    """The S3 endpoint when it is not AWS's (MinIO, R2, moto): ``AWS_ENDPOINT_URL_S3``, else ``AWS_ENDPOINT_URL``,
    the order botocore itself uses. The one place that reads them, for artifacts and batch sources alike."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def s3_client(endpoint: str | None = None, **config: Any) -> Any:
    """A boto3 S3 client on a session of its own (the default session is not thread-safe), at ``endpoint`` or
    ``endpoint_url()``; path-style addressing on any endpoint but AWS's, which is what those servers need."""
    endpoint = endpoint or endpoint_url()
    options = Config(signature_version="s3v4", s3={"addressing_style": "path"} if endpoint else {}, **config)
    return boto3.session.Session().client("s3", endpoint_url=endpoint, config=options)


#: How to give boto3 credentials: said by every S3 error about missing ones (artifact store, batch sources).
CREDENTIALS_FIX = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (plus AWS_SESSION_TOKEN for temporary ones), or AWS_PROFILE, "
    "or give the host an instance/task role"
)
#: The error codes S3 (and its look-alikes) answer for an object or key that is not there.
MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


def client_error(exc: ClientError) -> tuple[str, str]:
    """A ClientError's code, and its code and message as one line for people."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    return code, f"{code} {error.get('Message', '')}".strip()


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
        self._config: dict[str, Any] = {
            "retries": {"mode": "standard", "total_max_attempts": max_attempts},
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
        }
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
                    self._s3 = s3_client(self.endpoint_url, **self._config)
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
                f"No usable AWS credentials for the artifact store {self.url}: {CREDENTIALS_FIX}."
            ) from None
        except ClientError as exc:
            code, message = client_error(exc)
            if code in MISSING_CODES:
                raise ArtifactNotFound(f"No artifact {key!r} in {self.url}.") from None
            message += " (create the bucket first)" if code == "NoSuchBucket" else ""
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

    def presigned_url(self, key: str, expires_s: int = 3600, *, content_type: str | None = None) -> str | None:
        """A SigV4 GET link; S3 caps it at 7 days (and at the session's expiry for temporary credentials).

        The link makes S3 answer with ``Content-Disposition: attachment`` (and ``content_type`` when given), so
        an HTML report opened from it is saved, not rendered on the bucket's origin."""
        expires = max(1, min(int(expires_s), 7 * 24 * 3600))
        with self._guard("sign", key):
            params = {"Bucket": self.bucket, "Key": self._key(key), "ResponseContentDisposition": attachment(key)}
            if content_type:
                params["ResponseContentType"] = content_type
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

    def promote(self, source: str, target: str) -> None:
        source, target = validate_name(source), validate_name(target)
        client = self._client()
        for info in self.list(f"{source}/"):
            final = target + info.name[len(source) :]
            with self._guard("copy", info.name):
                client.copy({"Bucket": self.bucket, "Key": self._key(info.name)}, self.bucket, self._key(final))
