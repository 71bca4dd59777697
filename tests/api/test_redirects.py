"""A redirect to this server names no host: Starlette's own trailing-slash 307 is built from the Host header."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.redirects import relative


@pytest.fixture
def production(settings):
    """Outside dev, no Host allow-list stands before the redirect."""
    token = "a-token-of-twenty-chars"
    app = create_app(settings.model_copy(update={"dev": False, "api_token": token}))
    with TestClient(app, base_url="http://localhost", headers={"authorization": f"Bearer {token}"}) as client:
        yield client


@pytest.mark.parametrize("path", ["/api/runs/", "/api/schedules/?limit=5", "/api/functions/"])
def test_a_trailing_slash_redirect_is_relative_whatever_host_the_client_names(production, path):
    answer = production.get(path, headers={"host": "evil.example"}, follow_redirects=False)

    assert answer.status_code == 307
    assert answer.headers["location"] == path.replace("/?", "?").rstrip("/")
    followed = production.get(answer.headers["location"])
    assert followed.status_code == 200


@pytest.mark.parametrize(
    ("location", "host", "made"),
    [
        ("http://evil.example/api/runs?x=1", "evil.example", "/api/runs?x=1"),
        ("http://EVIL.example:8080/a#f", "evil.example:8080", "/a#f"),
        ("http://evil.example//other.example/x", "evil.example", "/other.example/x"),  # never "//other.example"
        ("https://bucket.s3.amazonaws.com/k?X-Amz-Signature=s", "api.example", None),  # another host: as it is
        ("/already/relative", "api.example", None),
    ],
)
def test_only_a_location_naming_the_requests_own_host_is_changed(location, host, made):
    assert relative(location, host) == (made or location)
