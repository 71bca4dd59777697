"""Helpers for tests that attack a real API process: raw HTTP requests, and what a namespace holds in Redis."""

from __future__ import annotations

import contextlib
import json
import socket
from typing import Any

import redis


def footprint(client: redis.Redis, namespace: str) -> dict[bytes, tuple[bytes, int]]:
    """Every key of ``namespace`` with its type and its memory use: equal before and after means nothing was
    stored (or grown) in between."""
    found = {}
    for key in client.scan_iter(match=f"{namespace}:*", count=1000):
        kind = client.type(key)
        found[key] = (kind, int(client.memory_usage(key, samples=0) or 0))
    return found


def raw_request(port: int, data: bytes, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Send ``data`` as it is (no client-side checks) and read the answer: ``(status, headers, body)``.

    The connection is closed after one answer (requests should say ``Connection: close``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        # The server may answer and close while we are still sending; read what it said.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = _unchunk(body)
    return status, headers, body


def _unchunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return out


def error_of(body: bytes) -> dict[str, Any]:
    """The ``{"code", "message"}`` of a JSON error answer (fails the test on anything else)."""
    document = json.loads(body)
    assert set(document) == {"error"} and set(document["error"]) == {"code", "message"}, document
    error: dict[str, Any] = document["error"]
    return error
