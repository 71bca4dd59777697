"""A synchronous function runs in a child of the API process: like a background one (tests/jobs/test_safety.py),
it never sees Backburner's own secrets, in ``os.environ`` or in ``/proc/self/environ``, while it keeps the
process's other variables."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.servers import ApiProc
from tests.support.sites import make_site

TOKEN = "sync-secrets-token-0123456789"
SECRET = "whsec_c2VjcmV0LXNpZ25pbmcta2V5LTAxMjM0NQ=="
FUNCTIONS = {
    "peek": """
        import os
        def handler(event, context):
            with open("/proc/self/environ", "rb") as environ:
                raw = environ.read()
            return {"statusCode": 200, "body": repr((
                os.environ.get("BACKBURNER_API_TOKEN"),
                os.environ.get("BACKBURNER_WEBHOOK_SECRET"),
                TOKEN_BYTES in raw or SECRET_BYTES in raw,
                os.environ.get("AWS_ACCESS_KEY_ID"),
            ))}
    """.replace("TOKEN_BYTES", repr(TOKEN.encode())).replace("SECRET_BYTES", repr(SECRET.encode())),
}
TOML = '[functions]\n  directory = "netlify/functions"\n'


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return make_site(tmp_path / "site", FUNCTIONS, TOML)


def test_a_synchronous_function_never_sees_backburners_secrets(site: Path, env: dict[str, str], tmp_path: Path):
    secrets = {"BACKBURNER_API_TOKEN": TOKEN, "BACKBURNER_WEBHOOK_SECRET": SECRET, "AWS_ACCESS_KEY_ID": "AKIAKEY"}
    api = ApiProc(site, {**env, **secrets}, log=tmp_path / "api.log")
    api.env.pop("BACKBURNER_DEV", None)
    api.start()
    try:
        answer = httpx.post(f"{api.url}/.netlify/functions/peek", timeout=30)
    finally:
        api.stop()
    assert answer.status_code == 200, answer.text
    assert answer.text == repr((None, None, False, "AKIAKEY"))
