"""Fixtures for destination tests: real webhook receivers (the S3 endpoint is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.http import WebhookReceiver


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
