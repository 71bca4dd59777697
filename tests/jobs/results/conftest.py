"""A site whose functions write artifacts and send webhooks to a real loopback receiver, with compressed
webhook timings; asking for ``s3_bucket`` (or ``s3_switch``) in a test moves the artifact store to S3."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jobs.delivery.webhooks import generate_secret
from tests.support.http import WebhookReceiver
from tests.support.sites import make_site

from .tcp import Switch

SECRET = generate_secret()

FUNCTIONS = {
    "report-background": """
        import json, pathlib, tempfile
        import pandas as pd

        def handler(event, context):
            tag = json.loads(event["body"] or "{}").get("tag", "x")
            context.artifacts.write("report.html", f"<h1>{tag}</h1>")
            context.artifacts.write("data/raw.bin", bytes(range(256)) * 4)
            big = pathlib.Path(tempfile.mkdtemp()) / "big.txt"
            big.write_bytes(b"0123456789abcde\\n" * 65536)  # 1 MiB, written from a path
            context.artifacts.write("big.txt", big)
            frame = pd.DataFrame({"city": ["Oslo", "Lima", "Pune"], "n": [3, 1, 2]})
            context.artifacts.write("frame.csv", frame)
            context.artifacts.write("frame.parquet", frame)
            if tag == "fail":
                raise RuntimeError("failed after writing")
            return {"tag": tag}
    """,
    "huge-background": """
        import pathlib, tempfile

        def handler(event, context):
            path = pathlib.Path(tempfile.mkdtemp()) / "huge.bin"
            with path.open("wb") as out:
                for _ in range(9):
                    out.write(b"\\x01" * (1024 * 1024))
            context.artifacts.write("huge.bin", path)
            context.artifacts.write("note.txt", "nine mebibytes")
            return {"ok": True}
    """,
    "flaky-store-background": """
        def handler(event, context):
            context.artifacts.write("out.txt", f"attempt {context.attempt}")
            return {"attempt": context.attempt}
    """,
    "bad-name-background": """
        def handler(event, context):
            context.artifacts.write("../escape.txt", "nope")
    """,
    "notify-background": """
        def handler(event, context):
            context.artifacts.write("summary.txt", "all good")
            return {"rows": 3}
    """,
    "doomed-background": """
        def handler(event, context):
            raise ValueError(f"doomed on attempt {context.attempt}")
    """,
    "private-hook-background": """
        def handler(event, context):
            return {"ok": True}
    """,
    "ephemeral-background": """
        def handler(event, context):
            context.artifacts.write("tmp.txt", "short-lived")
            return {"ok": True}
    """,
}


def toml(hook: str, private_hook: str) -> str:
    return f"""
[functions]
  directory = "netlify/functions"

[backburner.functions."*-background"]
  retries = []

[backburner.functions."flaky-store-background"]
  retries = ["0.2s"]

[backburner.functions."notify-background"]
  on_success = ["{hook}"]

[backburner.functions."doomed-background"]
  retries = ["0.1s", "0.1s"]
  on_failure = ["{hook}"]
  on_success = ["{hook}?never"]

[backburner.functions."private-hook-background"]
  on_success = ["{private_hook}"]

[backburner.functions."ephemeral-background"]
  retention = "3s"
"""


@pytest.fixture
def hook(webhook_receiver: Callable[..., WebhookReceiver]) -> WebhookReceiver:
    """The receiver every webhook of the test site goes to (tests change its behaviour as they need)."""
    return webhook_receiver()


@pytest.fixture
def site(tmp_path: Path, hook: WebhookReceiver) -> Path:
    # A private address: refused even in dev (which allows loopback receivers), unless on the allow list.
    private = "http://10.255.0.2:9/hook"
    return make_site(tmp_path / "site", FUNCTIONS, toml(hook.url, private))


@pytest.fixture
def s3_switch(s3_endpoint: str) -> Iterator[Switch]:
    """A TCP forwarder in front of the moto server that can go down (an S3 outage) and come back."""
    with Switch(int(s3_endpoint.rsplit(":", 1)[1])) as switch:
        yield switch


@pytest.fixture
def env(env: dict[str, str], request: pytest.FixtureRequest) -> dict[str, str]:
    extra = {
        "BACKBURNER_WEBHOOK_SECRET": SECRET,
        "BACKBURNER_WEBHOOK_ALLOW": "127.0.0.1,localhost",
        "BACKBURNER_WEBHOOK_RETRIES": "0.2s,0.4s,0.8s,1.6s,3.2s",
        "BACKBURNER_WEBHOOK_TIMEOUT": "0.5",
        "BACKBURNER_OUTBOX_POLL_INTERVAL": "0.05",
        "BACKBURNER_RETENTION_INTERVAL": "0.2",
    }
    if "s3_bucket" in request.fixturenames:
        bucket = request.getfixturevalue("s3_bucket")
        if "s3_switch" in request.fixturenames:
            endpoint = request.getfixturevalue("s3_switch").url
        else:
            endpoint = request.getfixturevalue("s3_endpoint")
        extra.update(BACKBURNER_ARTIFACTS=f"s3://{bucket}/pfx", AWS_ENDPOINT_URL=endpoint)
    return {**env, **extra}
