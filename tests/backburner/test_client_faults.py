"""backburner.client against APIs that misbehave: small servers on free ports that stay silent, refuse
streams or answer what Backburner never would."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest

from backburner.client import AsyncClient, Client


@pytest.fixture
def silent() -> Iterator[str]:
    """A URL where connections are accepted (by the kernel's backlog) and never answered."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_wait_on_a_silent_api_raises_timeout_error_at_its_own_timeout(silent: str) -> None:
    started = time.monotonic()
    with Client(silent) as client, pytest.raises(TimeoutError):
        client.wait("01JD3Z5W6X7Y8Z9A0B1C2D3E4F", timeout=1)
    assert time.monotonic() - started < 5  # not the client's 30 s, then Unreachable


def test_async_wait_on_a_silent_api_raises_timeout_error_at_its_own_timeout(silent: str) -> None:
    async def scenario() -> None:
        async with AsyncClient(silent) as client:
            await client.wait("01JD3Z5W6X7Y8Z9A0B1C2D3E4F", timeout=1)

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        asyncio.run(scenario())
    assert time.monotonic() - started < 5
