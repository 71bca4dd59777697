"""A corpus of bad input, sent raw (no client-side checks) to a real `backburner api` on a real Redis:
malformed management-API input, path tricks, odd methods, broken and oversized chunked bodies, huge query
strings and headers. Every answer is a 4xx (JSON from the API, never a 5xx or a traceback), and the
namespace in Redis is byte for byte what it was: nothing is stored for a refused request.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.support.exposure import error_of, footprint, raw_request
from tests.support.redis import RedisServer
from tests.support.servers import ApiProc
from tests.support.sites import make_site

TOKEN = "bad-input-test-token-0123456789"
UNKNOWN_RUN = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
TRIGGER = "/api/functions/echo-background/runs"


def request(method: str, target: str, *headers: str, body: bytes = b"", length: bool = True) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: localhost", "Connection: close", *headers]
    if length and body is not None and not any(h.lower().startswith("transfer-encoding") for h in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(method: str, target: str, chunks: list[bytes], *headers: str) -> bytes:
    body = b"".join(f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunks) + b"0\r\n\r\n"
    return request(method, target, "Transfer-Encoding: chunked", *headers, body=body, length=False)


JSON = "Content-Type: application/json"
# (what it tries, the raw request, the statuses it may get)
CORPUS: list[tuple[str, bytes, set[int]]] = [
    # -- malformed management-API input ----------------------------------------------------------------
    ("payload not UTF-8", request("POST", TRIGGER, JSON, body=b'{"a": "\xff\xfe"}'), {400}),
    ("payload not JSON", request("POST", TRIGGER, JSON, body=b"{nope"), {400}),
    ("payload nested 10,000 deep", request("POST", TRIGGER, JSON, body=b"[" * 10_000 + b"]" * 10_000), {400}),
    ("payload nested 65 deep", request("POST", TRIGGER, JSON, body=b'{"a":' * 65 + b"1" + b"}" * 65), {400}),
    ("payload NaN", request("POST", TRIGGER, JSON, body=b'{"x": NaN}'), {400}),
    ("payload 5,000-digit number", request("POST", TRIGGER, JSON, body=b"1" * 5000), {400}),
    ("payload UTF-16", request("POST", TRIGGER, JSON, body='{"a": 1}'.encode("utf-16")), {400}),
    ("replay body not JSON", request("POST", f"/api/runs/{UNKNOWN_RUN}/replay", JSON, body=b"{"), {400, 404}),
    (
        "webhooks body not UTF-8",
        request("POST", "/api/functions/echo-background/webhooks/enable", JSON, body=b"\xff"),
        {400, 422},
    ),
    (
        "webhooks body deep",
        request("POST", "/api/functions/echo-background/webhooks/enable", JSON, body=b"[" * 5000 + b"]" * 5000),
        {400, 422},
    ),
    (
        "webhooks body a string",
        request("POST", "/api/functions/echo-background/webhooks/enable", JSON, body=b'"x"'),
        {422},
    ),
    ("run id naming another key", request("GET", "/api/runs/x:logs"), {404}),
    ("run id naming another key (logs)", request("GET", "/api/runs/x:event/logs"), {404}),
    ("run id with a NUL", request("GET", "/api/runs/%00"), {404}),
    ("run id in lower case", request("GET", f"/api/runs/{UNKNOWN_RUN.lower()}"), {404}),
    ("run id 10 KB long", request("GET", "/api/runs/" + "A" * 7000), {404}),
    ("cancel a malformed id", request("POST", "/api/runs/..%2F..%2Fx/cancel"), {404}),
    ("replay a malformed id", request("POST", "/api/runs/*/replay"), {404}),
    ("events of a malformed id", request("GET", "/api/runs/%FF%FE/events"), {404}),
    ("artifact of a malformed id", request("GET", "/api/runs/x:y/artifacts/a.txt"), {404}),
    ("artifact name escaping", request("GET", f"/api/runs/{UNKNOWN_RUN}/artifacts/..%2F..%2Fetc%2Fpasswd"), {400}),
    ("artifact name with NUL", request("GET", "/api/functions/echo-background/latest/artifacts/a%00b"), {400}),
    ("latest of a malformed function", request("GET", "/api/functions/x:y/latest/artifacts/a.txt"), {400}),
    ("cursor not a run id", request("GET", "/api/runs?cursor=x:y"), {422}),
    ("cursor a lex-range marker", request("GET", "/api/runs?cursor=%5B"), {422}),
    ("limit zero", request("GET", "/api/runs?limit=0"), {422}),
    ("limit negative", request("GET", "/api/runs?limit=-1"), {422}),
    ("limit huge", request("GET", "/api/runs?limit=99999999999999999999999"), {422}),
    ("limit not a number", request("GET", "/api/runs?limit=1e3"), {422}),
    ("since not a time", request("GET", "/api/runs?since=yesterday"), {400}),
    ("since year 99999", request("GET", "/api/runs?since=99999-01-01T00:00:00"), {400}),
    ("until a number", request("GET", "/api/runs?until=1e30"), {400}),
    ("status unknown", request("GET", "/api/runs?status=bogus"), {422}),
    ("trigger unknown", request("GET", "/api/runs?trigger=%00"), {422}),
    ("function filter with a colon", request("GET", "/api/runs?function=a:b"), {422}),
    ("follow not a boolean", request("GET", f"/api/runs/{UNKNOWN_RUN}/logs?follow=maybe"), {422}),
    ("Last-Event-ID negative", request("GET", f"/api/runs/{UNKNOWN_RUN}/logs?follow=1&last_event_id=-5"), {400}),
    ("Last-Event-ID huge", request("GET", f"/api/runs/{UNKNOWN_RUN}/events", "Last-Event-ID: " + "9" * 5000), {400}),
    ("schedule count negative", request("GET", "/api/schedules?count=-1"), {422}),
    ("skips limit zero", request("GET", "/api/schedules/tick/skips?limit=0"), {422}),
    ("schedule name with a colon", request("POST", "/api/schedules/a:b/pause"), {404}),
    ("unknown function", request("POST", "/api/functions/nope/runs", body=b"{}"), {404}),
    ("Idempotency-Key empty", request("POST", TRIGGER, "Idempotency-Key: ", body=b"{}"), {400}),
    # -- path tricks --------------------------------------------------------------------------------------
    ("dot segments", request("GET", "/api/../../etc/passwd"), {404}),
    ("dot segments into static", request("GET", "/static/../../pyproject.toml"), {404}),
    ("encoded dot segments into static", request("GET", "/static/%2e%2e/%2e%2e/pyproject.toml"), {404}),
    ("double slashes", request("GET", "//api//runs"), {404}),
    ("function named ..", request("POST", "/.netlify/functions/%2e%2e"), {404}),
    ("function name with NUL", request("POST", "/.netlify/functions/echo-background%00"), {404}),
    ("function path back into the API", request("GET", "/.netlify/functions/../../api/runs"), {404}),
    ("docs asset escaping", request("GET", "/api/docs/..%2F..%2Fapi%2Fapp.py"), {404}),
    # -- odd methods -------------------------------------------------------------------------------------
    ("TRACE", request("TRACE", "/api/runs"), {400, 405}),
    ("DELETE the run list", request("DELETE", "/api/runs"), {405}),
    ("PATCH a cancel", request("PATCH", f"/api/runs/{UNKNOWN_RUN}/cancel"), {405}),
    ("unknown method", request("BREW", "/api/runs"), {400, 405}),
    ("GET with a body on trigger", request("GET", TRIGGER, body=b"{}"), {405}),
    # -- broken and oversized bodies ----------------------------------------------------------------------
    (
        "chunk size not hex",
        request("POST", TRIGGER, "Transfer-Encoding: chunked", body=b"zz\r\nx\r\n0\r\n\r\n", length=False),
        {400},
    ),
    (
        "Content-Length and chunked",
        request("POST", TRIGGER, "Transfer-Encoding: chunked", "Content-Length: 5", body=b"0\r\n\r\n", length=False),
        {400},
    ),
    ("negative Content-Length", request("POST", TRIGGER, "Content-Length: -1", length=False), {400}),
    ("absurd Content-Length", request("POST", TRIGGER, "Content-Length: 99999999999999", length=False), {413}),
    (
        "background body over 256 KB, chunked",
        chunked("POST", "/.netlify/functions/echo-background", [b"x" * 65536] * 5),
        {413},
    ),
    ("trigger body over 256 KB, chunked", chunked("POST", TRIGGER, [b"x" * 65536] * 5, JSON), {413}),
    (
        "webhooks body over 6 MB, chunked",
        chunked("POST", "/api/functions/echo-background/webhooks/enable", [b"x" * 65536] * 100, JSON),
        {413},
    ),
    ("sync body over 6 MB", request("POST", "/.netlify/functions/echo", body=b"x" * (6 * 1024 * 1024 + 1)), {413}),
    # -- huge query strings and headers ---------------------------------------------------------------------
    ("query string of 9 KB", request("GET", "/api/runs?x=" + "a" * 9000), {414}),
    ("query string of 200 KB", request("GET", "/.netlify/functions/echo-background?" + "a=b&" * 50_000), {414}),
    ("a cookie of 9 KB", request("POST", "/.netlify/functions/echo-background", "Cookie: c=" + "x" * 9000), {431}),
    (
        "2,000 small headers",
        request("POST", "/.netlify/functions/echo-background", *(f"X-H{n}: {'v' * 20}" for n in range(2000))),
        {431},
    ),
    ("a 2 MB header", request("POST", "/.netlify/functions/echo-background", "X-Big: " + "b" * (2 << 20)), {431}),
    ("a header name of 9 KB", request("GET", "/api/runs", "X" * 9000 + ": v"), {400, 431}),
    ("a control character in a header", request("GET", "/api/runs", "X-Evil: a\x01b"), {400}),
    ("a bare LF in the head", b"GET /api/runs HTTP/1.1\nHost: localhost\n\n", {200, 400}),
]


@pytest.fixture(scope="module")
def corpus_namespace() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def dev_api(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer, corpus_namespace: str
) -> Iterator[ApiProc]:
    """One `backburner api` in dev for the whole corpus (each case still compares the namespace before and after)."""
    root = tmp_path_factory.mktemp("corpus")
    site = make_site(root / "site")
    env = {"REDIS_URL": redis_server.url, "BACKBURNER_NAMESPACE": corpus_namespace, "BACKBURNER_DEV": "1"}
    proc = ApiProc(site, env, log=root / "api.log").start()
    yield proc
    proc.stop()


@pytest.mark.parametrize(("what", "raw", "allowed"), CORPUS, ids=[item[0] for item in CORPUS])
def test_bad_input_is_refused_with_a_4xx_and_stores_nothing(
    dev_api, redis_client, corpus_namespace, what, raw, allowed
):
    namespace = corpus_namespace
    before = footprint(redis_client, namespace)
    status, headers, body = raw_request(dev_api.port, raw)
    assert status in allowed, (what, status, body[:300])
    if status >= 400 and headers.get("content-type", "").startswith("application/json"):
        error_of(body)  # the {"error": {"code", "message"}} shape
    elif status >= 400:
        raise AssertionError(f"{what}: {status} without a JSON error: {headers} {body[:200]!r}")
    assert b"Traceback" not in body
    assert footprint(redis_client, namespace) == before, what
    assert "Traceback" not in dev_api.log.read_text(), what  # and nothing went wrong inside


def test_every_refusal_leaves_redis_memory_as_it_was(dev_api, redis_client, corpus_namespace):
    namespace = corpus_namespace
    """The whole corpus in one go (on one keep-alive-free connection each), then Redis's own memory figure."""
    for _, raw, _ in CORPUS[:5]:  # warm up: scripts loaded, connection pools made
        raw_request(dev_api.port, raw)
    before_keys = footprint(redis_client, namespace)
    before = redis_client.info("memory")["used_memory_dataset"]
    for _ in range(3):
        for what, raw, allowed in CORPUS:
            status, _, _ = raw_request(dev_api.port, raw)
            assert status in allowed, what
    assert footprint(redis_client, namespace) == before_keys
    # The dataset (keys and values, not client buffers) did not grow; a little slack for other tests' expiries.
    assert redis_client.info("memory")["used_memory_dataset"] <= before + 64 * 1024


def test_without_the_token_bad_input_is_401_first_and_never_5xx(site, env, tmp_path, redis_client, namespace):
    secured = {key: value for key, value in env.items() if key != "BACKBURNER_DEV"}
    proc = ApiProc(site, {**secured, "BACKBURNER_API_TOKEN": TOKEN}, log=tmp_path / "api.log")
    proc.env.pop("BACKBURNER_DEV", None)
    proc.start()
    try:
        before = footprint(redis_client, namespace)
        for what, raw, _ in CORPUS:
            status, headers, body = raw_request(proc.port, raw)
            assert 400 <= status < 500 or status == 200, (what, status)
            if headers.get("content-type", "").startswith("application/json"):
                error_of(body)
        bearer = f"Authorization: Bearer {TOKEN}"
        for raw in (
            request("GET", "/api/runs/x:logs", bearer),
            request("POST", TRIGGER, bearer, JSON, body=b"[" * 999),
        ):
            status, _, body = raw_request(proc.port, raw)
            assert status in (400, 404), body
        assert "Traceback" not in proc.log.read_text()
        after = footprint(redis_client, namespace)
        # Only the failure counter of this address may have appeared (wrong tokens are counted by design).
        assert {key: value for key, value in after.items() if b":authfail:" not in key} == before
    finally:
        proc.stop()


def test_a_request_head_sent_too_slowly_gets_408_and_the_connection_is_closed(site, env, tmp_path):
    """A trickled head (slowloris) or a silent connection is let go after BACKBURNER_HEAD_TIMEOUT; a slow body,
    a long answer and an idle kept-alive connection are not what it limits."""
    proc = ApiProc(site, {**env, "BACKBURNER_HEAD_TIMEOUT": "0.5"}, log=tmp_path / "api.log").start()
    try:
        with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")  # and never the blank line
            answer = read_until_closed(sock)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 ") and b"connection: close" in head
        assert json.loads(body)["error"] == {
            "code": "request_timeout",
            "message": "The request line and headers did not arrive within 0.5 s.",
        }

        with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
            assert read_until_closed(sock) == b""  # sent nothing: closed, nothing to answer

        with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:  # kept alive
            sock.sendall(request("GET", "/healthz").replace(b"Connection: close", b"Connection: keep-alive"))
            first = b""
            while not first.endswith(b'{"status":"ok"}'):
                first += sock.recv(65536)
            assert first.startswith(b"HTTP/1.1 200 ")
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # the next request's head, trickled
            assert read_until_closed(sock).startswith(b"HTTP/1.1 408 ")

        with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:  # pipelined in one packet
            whole = request("GET", "/healthz").replace(b"Connection: close", b"Connection: keep-alive")
            sock.sendall(whole + b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")  # the second head never ends
            both = read_until_closed(sock)
            assert both.startswith(b"HTTP/1.1 200 ") and b"HTTP/1.1 408 Request Timeout" in both

        with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
            head_only = request("POST", TRIGGER, JSON, body=b'{"slow": true}')[: -len(b'{"slow": true}')]
            sock.sendall(head_only)  # a whole head, then a body that takes longer than the head timeout
            time.sleep(1.0)  # the slowness under test, not a wait for an event
            sock.sendall(b'{"slow": true}')
            assert read_until_closed(sock).startswith(b"HTTP/1.1 202 ")
        assert "Traceback" not in proc.log.read_text()
    finally:
        proc.stop()


def read_until_closed(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


LONG = "a" * 5000


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/schedules", {"name": LONG, "function": "echo-background", "cron": "@daily"}),
        ("POST", "/api/schedules", {"name": "fine", "function": LONG, "cron": "@daily"}),
        ("POST", "/api/schedules", {"name": "fine", "function": "echo-background", "cron": LONG}),
        ("POST", "/api/schedules", {"name": "fine", "function": "echo-background", "cron": "@daily", "timezone": LONG}),
        ("GET", f"/api/schedules/{LONG}", None),
        ("POST", f"/.netlify/functions/{LONG}", None),
        ("POST", f"/api/functions/{LONG}/runs", {}),
    ],
)
def test_a_long_name_comes_back_clipped_in_the_message(client, method, path, body):
    """Said back whole, 5,000 characters of input make an answer of 5 KB; its start and length say as much."""
    answer = client.request(method, path, json=body)

    assert 400 <= answer.status_code < 500
    message = answer.json()["error"]["message"]
    assert "a" * 120 + "… (5,000 characters)" in message and len(message) < 600, message
