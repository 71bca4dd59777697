"""A small HTTP client for the CLI's client commands (invoke, runs, logs, download)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import click
import httpx

from .sse import Event, parse

#: Live streams send a keep-alive every 15 s, so a minute of silence means the connection is gone.
STREAM_TIMEOUT = httpx.Timeout(30.0, read=60.0)


class Client:
    def __init__(self, url: str, token: str | None) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=30.0)
        self.url = url

    @classmethod
    def from_options(cls, url: str | None) -> Client:
        return cls(
            url or os.environ.get("BACKBURNER_URL") or "http://127.0.0.1:8888", os.environ.get("BACKBURNER_API_TOKEN")
        )

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise click.ClickException(
                f"Cannot reach the Backburner API at {self.url} ({exc}). Is `backburner dev` running? "
                "Use --url or BACKBURNER_URL to point elsewhere."
            ) from None
        if response.status_code >= 400:
            _raise_api_error(response)
        return response

    def follow(self, path: str) -> Iterator[Event]:
        """Server-Sent Events from ``path`` until its ``end`` event (``api.streams``).

        A dropped connection is resumed where it stopped (``Last-Event-ID``), a few times, with back-off.
        """
        last_id: str | None = None
        failures = 0
        while True:
            headers = {"last-event-id": last_id} if last_id is not None else {}
            try:
                with self.http.stream("GET", path, headers=headers, timeout=STREAM_TIMEOUT) as response:
                    if response.status_code >= 400:
                        response.read()
                        _raise_api_error(response)
                        raise click.ClickException(f"{response.status_code}: {response.text[:500]}")
                    for event in parse(response.iter_lines()):
                        failures = 0
                        last_id = event.id if event.id is not None else last_id
                        yield event
                        if event.event == "end":
                            return
            except httpx.HTTPError as exc:
                failures += 1
                if failures > 5:
                    raise click.ClickException(f"Lost the live stream from {self.url} ({exc}); giving up.") from None
                time.sleep(min(0.25 * 2**failures, 5.0))

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise click.ClickException(f"{response.status_code}: {response.text[:500]}")
        return response.json()


def _raise_api_error(response: httpx.Response) -> None:
    """The API's ``{"error": {"code", "message"}}`` as a CLI error (with a hint for a missing token); other
    answers (a synchronous function's own 4xx, say) are left to the caller."""
    if not response.headers.get("content-type", "").startswith("application/json"):
        return
    try:
        data = response.json()
    except ValueError:
        return
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict) or not error.get("message"):
        return
    message = f"{response.status_code}: {error['message']}"
    if error.get("code") == "unauthorized":
        hint = (
            "BACKBURNER_API_TOKEN does not match the server's token"
            if os.environ.get("BACKBURNER_API_TOKEN")
            else ("export BACKBURNER_API_TOKEN=<the server's token>")
        )
        message += f" ({hint})"
    raise click.ClickException(message)
