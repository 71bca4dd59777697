"""``Idempotency-Key``: checked, scoped to its surface, and bound to the request that first used it.

A key is 1-255 printable ASCII characters (400 otherwise, including an empty or repeated header). It is
kept per function and per surface: ``http`` for the public Netlify URL and ``api`` for the management API,
so an anonymous caller of the public URL can never claim a key the operator will use through the API (or
the reverse). With the key the store keeps a fingerprint of the request (method, path, query string and
body): the same key with a different request within 24 h answers 409 ``idempotency_conflict`` naming the
run the key made, instead of silently returning that run.
"""

from __future__ import annotations

import hashlib
import re

from starlette.requests import Request

from jobs.errors import InvalidInput
from jobs.runs import Idempotency

HEADER = "idempotency-key"
MAX_LENGTH = 255
_VALID = re.compile(r"^[\x20-\x7e]{1,255}$")


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for part in (method.encode(), path.encode(), query.encode()):
        digest.update(len(part).to_bytes(4, "big") + part)
    digest.update(body)
    return digest.hexdigest()


def request_idempotency(request: Request, surface: str, body: bytes) -> Idempotency | None:
    """The request's key as the store keeps it, or None without one; InvalidInput (400) for a bad key."""
    values = request.headers.getlist(HEADER)
    if not values:
        return None
    if len(values) > 1:
        raise InvalidInput(f"Send one Idempotency-Key header, not {len(values)}.")
    key = values[0]
    if not _VALID.match(key):
        what = "empty" if not key else f"{len(key)} characters" if len(key) > MAX_LENGTH else "not printable ASCII"
        raise InvalidInput(f"Idempotency-Key must be 1 to {MAX_LENGTH} printable ASCII characters; this one is {what}.")
    scope = request.scope
    path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    query = (scope.get("query_string") or b"").decode("latin-1")
    return Idempotency(key, surface, fingerprint(request.method, path, query, body))
