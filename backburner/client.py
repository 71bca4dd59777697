"""A small HTTP client for the CLI's client commands (invoke, runs, logs, download)."""

from __future__ import annotations

import os
from typing import Any

import click
import httpx


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
        if response.status_code >= 400 and response.headers.get("content-type", "").startswith("application/json"):
            error = response.json().get("error", {})
            if isinstance(error, dict) and error.get("message"):
                raise click.ClickException(f"{response.status_code}: {error['message']}")
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise click.ClickException(f"{response.status_code}: {response.text[:500]}")
        return response.json()
