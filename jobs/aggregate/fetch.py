"""Fetching one source: pages one after another, each request under its host's concurrency limit, retried
with exponential backoff on transport errors, timeouts, 429 and 5xx (honouring ``Retry-After``), sent with
``If-None-Match`` when a body for that URL is remembered, and answered from the cache on a 304."""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import httpx

from .cache import Cached, EtagCache

RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})


class SourceError(Exception):
    """A source could not be fetched (after its retries, or at once for an answer retrying cannot fix)."""


@dataclass
class Page:
    url: str
    body: Any
    link: str | None
    not_modified: bool = False


@dataclass
class SourceResult:
    """What one source gave: its records, how it went, and the error if it failed."""

    name: str
    records: list[Any] = field(default_factory=list)
    pages: int = 0
    not_modified: int = 0
    requests: int = 0
    error: str | None = None
    elapsed_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "records": len(self.records),
            "pages": self.pages,
            "not_modified": self.not_modified,
            "requests": self.requests,
            "error": self.error,
            "elapsed_s": round(self.elapsed_s, 3),
        }


class HostLimits:
    """One semaphore per host (and port): at most ``per_host`` requests in flight to each."""

    def __init__(self, per_host: int) -> None:
        self.per_host = per_host
        self._semaphores: dict[str, asyncio.Semaphore] = {}

    def __call__(self, url: httpx.URL) -> asyncio.Semaphore:
        host = f"{url.host}:{url.port or (443 if url.scheme == 'https' else 80)}"
        if host not in self._semaphores:
            self._semaphores[host] = asyncio.Semaphore(self.per_host)
        return self._semaphores[host]


def parse_links(header: str | None, base: str) -> dict[str, str]:
    """``Link: <url>; rel="next", <url>; rel="last"`` -> ``{"next": absolute url, ...}`` (RFC 8288)."""
    links: dict[str, str] = {}
    for item in (header or "").split(","):
        target, _, params = item.strip().partition(";")
        if not (target.startswith("<") and target.endswith(">")):
            continue
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "rel":
                for rel in value.strip().strip('"').split():
                    links[rel.lower()] = urljoin(base, target[1:-1])
    return links


def _retry_after(response: httpx.Response, cap: float) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return min(cap, max(0.0, float(value)))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        if when is None:
            return None
        return min(cap, max(0.0, (when - datetime.now(UTC)).total_seconds()))


async def fetch_page(
    client: httpx.AsyncClient,
    source: Any,
    url: httpx.URL,
    headers: dict[str, str],
    limits: HostLimits,
    cache: EtagCache | None,
    result: SourceResult,
) -> Page:
    """One page, with retries; raises SourceError when the source should be given up."""
    cached = cache.get(source.name, str(url)) if cache is not None else None
    if cached is not None:
        headers = {**headers, "If-None-Match": cached.etag}
    problem = "no attempt made"
    for attempt in range(source.retries + 1):
        delay = source.backoff * 2**attempt
        try:
            async with limits(url):
                result.requests += 1
                response = await client.request(source.method, url, headers=headers, timeout=source.timeout)
        except httpx.TimeoutException as exc:
            problem = f"timed out after {source.timeout:g}s ({type(exc).__name__})"
        except httpx.TransportError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        else:
            status = response.status_code
            if status == 304 and cached is not None:
                return Page(str(url), json.loads(cached.body), cached.link, not_modified=True)
            if status in RETRYABLE:
                problem = f"HTTP {status}"
                delay = _retry_after(response, source.max_backoff) or delay
            elif status >= 400:
                raise SourceError(f"HTTP {status} from {url}: {response.text[:200]}")
            else:
                try:
                    body = response.json()
                except ValueError as exc:
                    raise SourceError(f"{url} did not answer JSON: {exc}") from None
                link = response.headers.get("link")
                etag = response.headers.get("etag")
                if cache is not None and etag:
                    cache.put(source.name, str(url), Cached(etag, link, response.text))
                return Page(str(url), body, link)
        if attempt < source.retries:
            await asyncio.sleep(min(delay, source.max_backoff))
    raise SourceError(f"{url}: {problem} (after {source.retries + 1} attempts)")


def dig(body: Any, path: str | None) -> Any:
    """``dig({"data": {"items": [...]}}, "data.items")`` -> the list; None for a missing step."""
    for step in (path or "").split("."):
        if not step:
            continue
        body = body.get(step) if isinstance(body, dict) else None
    return body


def missing_step(body: Any, path: str | None) -> str | None:
    """The first step of ``path`` that ``body`` does not have, with the keys it has there (None: all there)."""
    for step in (path or "").split("."):
        if not step:
            continue
        if not isinstance(body, dict) or step not in body:
            keys = ", ".join(map(str, list(body)[:10])) if isinstance(body, dict) else f"a {type(body).__name__}"
            return f"{step!r} (found: {keys or 'an empty object'})"
        body = body[step]
    return None


def _origin(url: httpx.URL) -> str:
    """Scheme, host and port, as a browser's same-origin rule compares them."""
    port = url.port or {"http": 80, "https": 443}.get(url.scheme)
    return f"{url.scheme}://{url.host}:{port}"


async def fetch_source(
    client: httpx.AsyncClient,
    source: Any,
    headers: dict[str, str],
    limits: HostLimits,
    cache: EtagCache | None,
    on_done: Callable[[SourceResult], None],
) -> SourceResult:
    """Every page of one source, following its paginator; errors end up in ``result.error``."""
    result = SourceResult(source.name)
    started = time.monotonic()
    url: httpx.URL | None = source.first_url()
    home = _origin(url) if url is not None else ""
    seen: set[str] = set()
    try:
        while url is not None and result.pages < source.max_pages and str(url) not in seen:
            seen.add(str(url))
            page = await fetch_page(client, source, url, headers, limits, cache, result)
            result.pages += 1
            result.not_modified += page.not_modified
            if result.pages == 1 and (missing := missing_step(page.body, source.items)) is not None:
                # A wrong items path would collect nothing and look like an empty API: say so instead.
                raise SourceError(f"{url}: the answer has no {missing}, so items={source.items!r} finds no records")
            items = dig(page.body, source.items)
            records = items if isinstance(items, list) else [] if items is None else [items]
            result.records.extend(records)
            following = source.paginate.next_url(page, records, url) if source.paginate is not None else None
            if following is not None and _origin(following) != home:
                # The source's headers carry its credentials: a page elsewhere (named by the answer) must not get them.
                raise SourceError(
                    f"{url}: the next page is on {_origin(following)}, not on the source's own {home}; pagination "
                    "stays on the source's origin, so that its credentials go nowhere else"
                )
            url = following
    except SourceError as exc:
        result.error = str(exc)
    finally:
        result.elapsed_s = time.monotonic() - started
    on_done(result)
    return result
