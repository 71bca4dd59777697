"""Webhook destinations: signing (the ``standardwebhooks`` reference library), one delivery attempt, the SSRF
guard, the retry schedule.

The durable outbox (what to send, when, across restarts) lives elsewhere; this module is the stateless part
it calls: ``deliver`` makes exactly one attempt and reports it as an ``Attempt`` record, never raising for
anything the endpoint does, so the caller decides about retries with ``next_delay``.
"""

from __future__ import annotations

import base64
import importlib.metadata
import ipaddress
import json
import secrets
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError

from ..clock import iso, now
from ..errors import ConfigError, InvalidInput

#: Delays in seconds after attempt 1, 2, ...: about 3.6 hours in total. The caller adds jitter.
RETRY_SCHEDULE_S: tuple[float, ...] = (5, 30, 120, 600, 1800, 3600, 7200)
#: A Retry-After larger than this is capped, so one endpoint cannot park a delivery for days.
MAX_RETRY_AFTER_S = 3600.0
ALLOW_ENV = "BACKBURNER_WEBHOOK_ALLOW"
_ERROR_CHARS = 300

try:
    VERSION = importlib.metadata.version("backburner")
except importlib.metadata.PackageNotFoundError:  # running from a source tree
    VERSION = "dev"
USER_AGENT = f"Backburner/{VERSION}"
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


#: How long a Standard Webhooks secret's key may be, in bytes.
KEY_BYTES = (24, 64)


class Signer:
    """Signs with every secret ``BACKBURNER_WEBHOOK_SECRET`` holds: one, or several separated by spaces while
    receivers move to a new one (each delivery then carries a signature per secret, as Standard Webhooks allows,
    and a receiver that knows either verifies it)."""

    def __init__(self, secrets: list[Webhook]) -> None:
        self._secrets = secrets

    def sign(self, message_id: str, timestamp: datetime, body: bytes) -> str:
        return " ".join(secret.sign(message_id, timestamp, body) for secret in self._secrets)


def signer(secret: str) -> Signer:
    """The signer for ``secret``; ConfigError naming what is wrong if a part is not ``whsec_`` and the base64
    (padded or not) of 24 to 64 bytes."""
    parts = secret.split()
    if not parts:
        raise ConfigError("The webhook secret is empty: expected 'whsec_' followed by base64 bytes.")
    return Signer([_secret(part, n, len(parts)) for n, part in enumerate(parts, 1)])


def _secret(part: str, n: int, count: int) -> Webhook:
    which = f"secret {n} of {count}" if count > 1 else "secret"
    if not part.startswith("whsec_"):
        raise ConfigError(f"The webhook {which} does not start with 'whsec_'.")
    encoded = part.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except ValueError:  # binascii.Error is a ValueError
        raise ConfigError(f"The webhook {which} is not valid: expected 'whsec_' followed by base64 bytes.") from None
    low, high = KEY_BYTES
    if not low <= len(key) <= high:
        raise ConfigError(
            f"The webhook {which} holds {len(key)} bytes: expected 'whsec_' followed by the base64 of {low} to"
            f" {high} random bytes (separate two secrets with a space while receivers move to a new one)."
        )
    try:
        return Webhook(key)
    except (ValueError, EmptyWebhookSecretError):
        raise ConfigError(f"The webhook {which} is not valid.") from None


def generate_secret() -> str:
    """A new ``whsec_`` secret of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt, as recorded on the run under ``deliveries``."""

    url: str
    webhook_id: str
    attempt: int
    at: str
    status: int | None
    ok: bool
    error: str | None
    duration_ms: float
    retry_after_s: float | None
    gone: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def display_url(url: str) -> str:
    """The URL without user info or query, which may hold credentials: safe for records and messages."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=netloc, query="", fragment="").geturl()


def _refusal_reason(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return _refusal_reason(ip.ipv4_mapped)
    for reason, hit in (
        ("loopback", ip.is_loopback),
        ("unspecified", ip.is_unspecified),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
        ("non-public", not ip.is_global),
    ):
        if hit:
            return reason
    return None


def _allow_rules(allow: Sequence[str]) -> tuple[set[str], list[IPNetwork]]:
    """Split allow entries into host names and networks (an IP is a one-address network)."""
    names: set[str] = set()
    networks: list[IPNetwork] = []
    for raw in allow:
        entry = raw.strip().lower().rstrip(".").strip("[]")
        if entry:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                names.add(entry)
    return names, networks


class _Unresolvable(Exception):
    """DNS failed: an endpoint problem (retry later), not a refusal."""


def _checked_addresses(url: str, allow: Sequence[str]) -> tuple[str, list[str]]:
    """The SSRF guard: validate the URL, resolve its host and return (host, approved addresses).

    Refuses (InvalidInput) non-http(s) URLs and hosts with ANY loopback, private, link-local (cloud
    metadata), unspecified, multicast, reserved or otherwise non-public address, unless ``allow`` names the
    host, the address or a CIDR holding it. A host that does not resolve raises _Unresolvable: that is the
    endpoint's (possibly passing) problem, not a refusal.
    """
    shown = display_url(url)
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise InvalidInput(f"Webhook URL {shown!r} is not valid: {exc}.") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput(f"Webhook URL {shown!r} is refused: only http and https URLs are allowed.")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise InvalidInput(f"Webhook URL {shown!r} is refused: it has no host.")
    try:
        addresses = [str(ipaddress.ip_address(host))]  # an IP literal needs no DNS
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise _Unresolvable(f"cannot resolve {host!r}: {exc}") from None
        addresses = list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))
    names, networks = _allow_rules(allow)
    if host in names:
        return host, addresses
    for address in addresses:
        ip = ipaddress.ip_address(address)
        reason = _refusal_reason(ip)
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        if reason and not any(ip in net or (mapped is not None and mapped in net) for net in networks):
            raise InvalidInput(
                f"Webhook URL {shown!r} is refused: {host} resolves to {address}, a {reason} address. "
                f"Set {ALLOW_ENV}=<host or CIDR> to allow it (e.g. {ALLOW_ENV}={host})."
            )
    return host, addresses


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now()).total_seconds())


def next_delay(
    attempt_number: int, retry_after_s: float | None = None, schedule: Sequence[float] = RETRY_SCHEDULE_S
) -> float | None:
    """Seconds to wait after failed attempt ``attempt_number`` (1-based), or None when attempts are used up.

    A Retry-After longer than the schedule's delay wins, capped at ``MAX_RETRY_AFTER_S``.
    """
    if attempt_number < 1:
        raise ValueError(f"attempt_number starts at 1, got {attempt_number}")
    if attempt_number > len(schedule):
        return None
    delay = float(schedule[attempt_number - 1])
    if retry_after_s is not None:
        delay = max(delay, min(float(retry_after_s), MAX_RETRY_AFTER_S))
    return delay


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 1] + "…"


def deliver(
    url: str,
    webhook_id: str,
    event_type: str,
    payload: Mapping[str, Any],
    *,
    secret: str,
    attempt: int,
    timeout_s: float = 15.0,
    client: httpx.Client | None = None,
    allow: Sequence[str] = (),
    occurred_at: datetime | None = None,
) -> Attempt:
    """POST one signed attempt and report it. Never raises for endpoint problems (they are in the Attempt);
    raises InvalidInput for a URL the SSRF guard refuses or a payload that is not JSON.

    ``occurred_at`` is the event's time in the body; pass the same value on every retry so the body (and so
    the consumer's view of the event) stays identical, while ``webhook-timestamp`` is this attempt's time.
    Plain-http connections go to the addresses the guard approved (no second DNS lookup to rebind).
    """
    started, at = time.perf_counter(), iso(now())
    webhook = signer(secret)

    def record(status: int | None, error: str | None, retry_after: float | None = None) -> Attempt:
        ok = status is not None and 200 <= status < 300
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        shown = display_url(url)
        return Attempt(shown, webhook_id, attempt, at, status, ok, error, elapsed, retry_after, status == 410)

    try:
        body = json.dumps(
            {"type": event_type, "timestamp": iso(occurred_at or now()), "data": payload},
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        ).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"The webhook payload for {display_url(url)!r} is not JSON-serialisable: {exc}") from None
    try:
        _, addresses = _checked_addresses(url, allow)
    except _Unresolvable as exc:
        return record(None, _short(str(exc)))
    timestamp = int(time.time())
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": webhook.sign(webhook_id, datetime.fromtimestamp(timestamp, UTC), body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }
    target = httpx.URL(url)
    # Plain http goes to the approved addresses (no second lookup that DNS rebinding could change); https
    # goes by name, where certificate verification already defeats rebinding and pools stay per host.
    pinned = [target.copy_with(host=a) for a in addresses] if target.scheme == "http" else [target]
    own = client is None
    http = client or httpx.Client(timeout=timeout_s, follow_redirects=False)
    error = "connection failed"
    try:
        for destination in pinned:  # the next address only when this one could not even be connected to
            request = http.build_request("POST", destination, content=body, headers=headers, timeout=timeout_s)
            request.headers["host"] = target.netloc.decode("ascii")
            try:
                response = http.send(request, follow_redirects=False, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                error = _short(f"connection to {destination.host} failed: {exc or type(exc).__name__}")
                continue
            except httpx.TimeoutException as exc:
                return record(None, f"timed out after {timeout_s:g} s ({type(exc).__name__})")
            except httpx.HTTPError as exc:
                return record(None, _short(f"{type(exc).__name__}: {exc}"))
            try:
                snippet = _read_some(response) if not response.is_success else ""
            finally:
                response.close()
            status, retry_after = response.status_code, parse_retry_after(response.headers.get("retry-after"))
            if response.is_success:
                return record(status, None, retry_after)
            detail = f"HTTP {status}"
            if response.is_redirect or 300 <= status < 400:
                detail += f" (redirect to {response.headers.get('location', '?')!r} not followed)"
            elif snippet:
                detail += f": {snippet}"
            return record(status, _short(detail), retry_after)
        return record(None, error)
    finally:
        if own:
            http.close()


def _read_some(response: httpx.Response, limit: int = 512) -> str:
    """The start of the response body for the error message; the rest is not worth waiting for."""
    data = b""
    try:
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) >= limit:
                break
    except httpx.HTTPError:
        pass
    return data[:limit].decode("utf-8", "replace")
