"""Fixtures for destination tests: a real S3 endpoint (moto server) and real webhook receivers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.http import WebhookReceiver
from tests.support.s3 import create_bucket, dummy_credentials_env, moto_server, patched_env


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """One moto server for the session, with dummy credentials in this process's environment meanwhile."""
    with patched_env(dummy_credentials_env()), moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    """A fresh, empty bucket on the session's moto server."""
    return create_bucket(s3_endpoint)


@pytest.fixture
def webhook_receiver() -> Iterator[Callable[..., WebhookReceiver]]:
    """Factory: ``webhook_receiver(status=410, fail_first=2)`` starts a receiver; all stop at teardown."""
    started: list[WebhookReceiver] = []

    def make(**behaviour: Any) -> WebhookReceiver:
        receiver = WebhookReceiver(**behaviour).start()
        started.append(receiver)
        return receiver

    yield make
    for receiver in started:
        receiver.stop()
