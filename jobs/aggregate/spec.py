"""What a source is: its URL, auth (values may be ``env:NAME`` references), pagination, and limits; and
``sources_from``, which builds sources from a config table (a TOML file beside the function, say)."""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from ..errors import ConfigError
from .fetch import Page, dig, parse_links

USER_AGENT = "backburner-aggregate/0.1"


def secret(value: str, where: str) -> str:
    """``env:NAME`` -> the variable's value (an error naming it if unset); anything else as written."""
    if not value.startswith("env:"):
        return value
    name = value[4:]
    found = os.environ.get(name)
    if not found:
        raise ConfigError(f"{where}: environment variable {name} is not set (referenced as {value!r}).")
    return found


# -- auth -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bearer:
    token: str

    def headers(self, where: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret(self.token, where)}"}


@dataclass(frozen=True)
class Basic:
    username: str
    password: str

    def headers(self, where: str) -> dict[str, str]:
        pair = f"{secret(self.username, where)}:{secret(self.password, where)}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


@dataclass(frozen=True)
class Header:
    name: str
    value: str

    def headers(self, where: str) -> dict[str, str]:
        return {self.name: secret(self.value, where)}


Auth = Bearer | Basic | Header


# -- pagination -----------------------------------------------------------------------------------------


class Paginator(Protocol):
    """How to find the next page: any object with this method (the three below, or your own)."""

    def next_url(self, page: Page, records: list[Any], url: httpx.URL) -> httpx.URL | None: ...


@dataclass(frozen=True)
class LinkHeader:
    """Follow ``Link: <...>; rel="next"`` until there is none (GitHub, GitLab, many REST APIs)."""

    rel: str = "next"

    def next_url(self, page: Page, records: list[Any], url: httpx.URL) -> httpx.URL | None:
        found = parse_links(page.link, str(url)).get(self.rel)
        return httpx.URL(found) if found else None


@dataclass(frozen=True)
class Cursor:
    """Send the body's ``field`` (a dotted path) back as query parameter ``param`` until it is empty.

    With ``param=None`` the field holds the next page's full URL instead (``{"next": "https://..."}``).
    """

    param: str | None = "cursor"
    field: str = "next_cursor"

    def next_url(self, page: Page, records: list[Any], url: httpx.URL) -> httpx.URL | None:
        value = dig(page.body, self.field)
        if value in (None, "", False):
            return None
        if self.param is None:
            return httpx.URL(str(url.join(str(value))))
        return url.copy_set_param(self.param, str(value))


@dataclass(frozen=True)
class PageNumber:
    """``?page=1``, ``2``, ... until a page has no records (or fewer than ``size`` when the size is known)."""

    param: str = "page"
    start: int = 1
    size: int | None = None
    size_param: str | None = None

    def first(self, url: httpx.URL) -> httpx.URL:
        url = url.copy_set_param(self.param, str(self.start))
        return url.copy_set_param(self.size_param, str(self.size)) if self.size_param and self.size else url

    def next_url(self, page: Page, records: list[Any], url: httpx.URL) -> httpx.URL | None:
        if not records or (self.size is not None and len(records) < self.size):
            return None
        return url.copy_set_param(self.param, str(int(url.params.get(self.param, self.start)) + 1))


# -- sources --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One API to collect from. ``items`` is the dotted path of the record list in each page's JSON (None:
    the body itself); ``timeout`` is per request, ``retries`` after the first try, ``backoff`` the first
    delay (doubled each time, at most ``max_backoff``); ``conditional`` sends remembered ETags."""

    name: str
    url: str
    params: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    auth: Auth | None = None
    paginate: Paginator | None = None
    items: str | None = None
    timeout: float = 10.0
    retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_pages: int = 10_000
    conditional: bool = True
    method: str = "GET"

    def first_url(self) -> httpx.URL:
        url = httpx.URL(self.url)
        for key, value in self.params.items():
            url = url.copy_set_param(key, str(value))
        return self.paginate.first(url) if isinstance(self.paginate, PageNumber) else url

    def request_headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        headers.update({key: secret(value, f"source {self.name!r}") for key, value in self.headers.items()})
        if self.auth is not None:
            headers.update(self.auth.headers(f"source {self.name!r}"))
        return headers


def sources_from(config: Mapping[str, Mapping[str, Any]]) -> list[Source]:
    """Sources from a table (e.g. a TOML file beside the function), keyed by source name::

    [orders]
    url = "https://api.example.com/orders"
    items = "data"
    paginate = "link"   # or "cursor", "page", {cursor = {param = "cursor", field = "next"}}, {page = {size = 100}}
    auth = {bearer = "env:ORDERS_TOKEN"}   # or {basic = ["env:USER", "env:PASS"]}, {header = {X-Key = "env:KEY"}}
    """
    sources = []
    for name, spec in config.items():
        values = dict(spec)
        values["auth"] = _auth(values.get("auth"), name)
        values["paginate"] = _paginate(values.get("paginate"), name)
        try:
            sources.append(Source(name=name, **values))
        except TypeError as exc:
            raise ConfigError(f"source {name!r}: {exc}") from None
    return sources


def _auth(spec: Any, name: str) -> Auth | None:
    if spec is None:
        return None
    if isinstance(spec, Mapping) and len(spec) == 1:
        [(kind, value)] = spec.items()
        if kind == "bearer":
            return Bearer(str(value))
        if kind == "basic" and isinstance(value, Sequence) and len(value) == 2:
            return Basic(str(value[0]), str(value[1]))
        if kind == "header" and isinstance(value, Mapping) and len(value) == 1:
            [(header, text)] = value.items()
            return Header(str(header), str(text))
    shapes = "{bearer = ...}, {basic = [user, password]} or {header = {Name = value}}"
    raise ConfigError(f"source {name!r}: auth must be {shapes}, got {spec!r}")


def _paginate(spec: Any, name: str) -> Paginator | None:
    if spec is None or spec == "none":
        return None
    if spec == "link":
        return LinkHeader()
    if spec in ("cursor", "page"):
        spec = {spec: {}}
    if isinstance(spec, Mapping) and len(spec) == 1:
        [(kind, options)] = spec.items()
        kinds = {"link": LinkHeader, "cursor": Cursor, "page": PageNumber}
        if kind in kinds:
            try:
                return kinds[kind](**dict(options))
            except TypeError as exc:
                raise ConfigError(f"source {name!r}: paginate.{kind}: {exc}") from None
    raise ConfigError(f"source {name!r}: paginate must be 'link', 'cursor', 'page' or a table of one of them")
