"""A real S3 endpoint for tests: moto's standalone server in its own process on a free loopback port.

A separate process (not ``ThreadedMotoServer`` or moto's in-process decorators) keeps moto's in-process hooks out of the
code under test: boto3 talks HTTP to a server, exactly as it would to MinIO or AWS.

moto accepts any signature and never expires presigned URLs, so ``presign_problem`` re-derives SigV4
query signatures independently (from the AWS spec, not botocore) to test expiry and tampering.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import boto3
from botocore.config import Config

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"

#: Variables that would let a test reach real credentials or a real endpoint; cleared in tests.
AWS_AMBIENT = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
)


def no_credentials_env() -> dict[str, str | None]:
    """Environment changes under which botocore finds no credentials anywhere, quickly (no IMDS probe)."""
    env: dict[str, str | None] = dict.fromkeys(AWS_AMBIENT)
    env.update(
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
    )
    return env


def dummy_credentials_env() -> dict[str, str | None]:
    """Dummy credentials for the moto server, and nothing from the developer's own AWS setup."""
    env = no_credentials_env()
    env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
    return env


@contextlib.contextmanager
def patched_env(changes: dict[str, str | None]) -> Iterator[None]:
    """Set (or, for None, remove) environment variables for the block, then restore them."""
    saved = {name: os.environ.get(name) for name in changes}
    try:
        for name, value in changes.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ready(port: int, proc: subprocess.Popen[bytes], deadline: float) -> bool:
    """Poll until the server accepts connections (it is another process: there is nothing to wait on)."""
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
        time.sleep(0.05)
    return False


@contextlib.contextmanager
def moto_server(startup_timeout: float = 30.0) -> Iterator[str]:
    """Run ``python -m moto.server`` on a free loopback port; yield its endpoint URL; stop it after."""
    with tempfile.TemporaryFile() as log:
        for _ in range(3):  # the free port may be taken between choosing and binding: try another
            port = free_port()
            proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            if _ready(port, proc, time.monotonic() + startup_timeout):
                break
            proc.kill()
            proc.wait()
        else:
            log.seek(0)
            raise RuntimeError(f"moto server did not start:\n{log.read().decode(errors='replace')[-2000:]}")
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@functools.cache
def s3_client(endpoint_url: str) -> Any:
    """A plain boto3 client for setting up and inspecting the server (not the code under test); cached,
    because building a client costs a few hundred milliseconds."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def create_bucket(endpoint_url: str, name: str | None = None) -> str:
    """Create a bucket (a fresh unique one by default) and return its name."""
    name = name or f"bb-test-{uuid.uuid4().hex[:12]}"
    s3_client(endpoint_url).create_bucket(Bucket=name)
    return name


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def presign_problem(url: str, secret_key: str = SECRET_KEY, now: datetime | None = None) -> str | None:
    """Check a SigV4 presigned GET URL as S3 does; return None if valid, else what is wrong.

    Written from the AWS SigV4 spec (query-string auth, UNSIGNED-PAYLOAD, host-only signed headers).
    """
    parts = urlsplit(url)
    params = parse_qsl(parts.query, keep_blank_values=True)
    query = dict(params)
    if query.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" or "X-Amz-Signature" not in query:
        return "not a SigV4 presigned URL"
    signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    if (now or datetime.now(UTC)) > signed_at + timedelta(seconds=int(query["X-Amz-Expires"])):
        return "expired"
    _, day, region, service, terminator = query["X-Amz-Credential"].split("/")

    def enc(text: str) -> str:
        return quote(text, safe="-_.~")

    canonical_query = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(params) if k != "X-Amz-Signature")
    signed_headers = query["X-Amz-SignedHeaders"]
    if signed_headers != "host":
        return f"unexpected signed headers {signed_headers!r}"
    canonical_request = "\n".join(
        ["GET", parts.path or "/", canonical_query, f"host:{parts.netloc}", "", "host", "UNSIGNED-PAYLOAD"]
    )
    scope = f"{day}/{region}/{service}/{terminator}"
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            query["X-Amz-Date"],
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = _hmac(("AWS4" + secret_key).encode(), day)
    for part in (region, service, terminator):
        key = _hmac(key, part)
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return None if hmac.compare_digest(expected, query["X-Amz-Signature"]) else "signature does not match"
