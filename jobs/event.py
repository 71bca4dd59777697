"""Netlify's v1 (Lambda-shaped) event, built from an HTTP request or a schedule tick."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any

_TEXT_TYPES = {
    "application/csp-report",
    "application/graphql",
    "application/json",
    "application/javascript",
    "application/x-www-form-urlencoded",
    "application/x-ndjson",
    "application/xml",
}


def is_text(content_type: str | None) -> bool:
    """Netlify's rule for which bodies arrive as text; everything else (and no type) is base64."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith("text/") or media.endswith(("+json", "+xml")) or media in _TEXT_TYPES


def _group(pairs: Iterable[tuple[str, str]], *, lower: bool) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key.lower() if lower else key, []).append(value)
    return grouped


def build_event(
    *,
    method: str,
    url: str,
    path: str,
    raw_query: str,
    headers: Iterable[tuple[str, str]],
    query: Iterable[tuple[str, str]],
    body: bytes,
) -> dict[str, Any]:
    """The event for an HTTP invocation: multi-value maps keep repeats, single maps join them with ', '."""
    multi_headers = _group(headers, lower=True)
    multi_query = _group(query, lower=False)
    text = is_text(multi_headers.get("content-type", [None])[0])
    if not body:
        encoded: str | None = None if method in ("GET", "HEAD") else ""
    elif text:
        encoded = body.decode("utf-8", errors="replace")
    else:
        encoded = base64.b64encode(body).decode("ascii")
    return {
        "rawUrl": url,
        "rawQuery": raw_query,
        "path": path,
        "httpMethod": method,
        "headers": {key: ", ".join(values) for key, values in multi_headers.items()},
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {key: ", ".join(values) for key, values in multi_query.items()},
        "multiValueQueryStringParameters": multi_query,
        "body": encoded,
        "isBase64Encoded": bool(body) and not text,
    }


def payload_event(function: str, payload: Any, *, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The event for a run triggered with a JSON payload (API, CLI, schedule): a JSON POST."""
    body = json.dumps(payload)
    merged = {"content-type": "application/json", **(headers or {})}
    path = f"/.netlify/functions/{function}"
    return {
        "rawUrl": path,
        "rawQuery": "",
        "path": path,
        "httpMethod": "POST",
        "headers": merged,
        "multiValueHeaders": {key: [value] for key, value in merged.items()},
        "queryStringParameters": {},
        "multiValueQueryStringParameters": {},
        "body": body,
        "isBase64Encoded": False,
    }
