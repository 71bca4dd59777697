"""A real JSON API on loopback for aggregation tests: paginated three ways, ETag-aware, slow, failing, gated.

    /link?page=N          3 pages of 4 items, Link: <...?page=N+1>; rel="next"
    /cursor?cursor=X      {"data": [...], "next": "X+1" | null}, 3 pages
    /pages?page=N         a list per page; [] after page 3
    /etag?page=N          like /link, with an ETag per page; 304 when If-None-Match matches (``version`` changes data)
    /flaky                503 + Retry-After: 0 for the first ``flaky_failures`` requests, then 200
    /numbers              two records whose ids are numbers (nested objects too)
    /broken               always 500;  /missing  always 404;  /notjson  200 with text
    /slow                 answers after ``slow_s`` (cut short when the server stops)
    /gate                 a barrier: answers once ``gate`` requests wait together (or after ``gate_timeout``)
    /auth                 200 only with the expected Authorization / X-Api-Key header, else 401
    /elsewhere            one record, and a next page on ``elsewhere`` (Link, or a cursor URL with ?as=cursor)

Every request is recorded (path, query, headers, status) so tests assert on what was sent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int


class Api:
    def __init__(self) -> None:
        self.version = 1
        self.flaky_failures = 2
        self.slow_s = 2.0
        self.gate = 2
        self.gate_timeout = 5.0
        self._generation = 0
        self._arrived = 0
        self.expected_auth: dict[str, str] = {}
        #: Where /elsewhere's next page is (another server: another origin).
        self.elsewhere = ""
        self.seen: list[Seen] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Api:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        with self._lock:
            self._lock.notify_all()
        self._server.shutdown()
        self._server.server_close()

    def requests(self, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.path == path]

    # -- answers -------------------------------------------------------------------------------------

    def answer(self, path: str, query: dict[str, str], headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        page = int(query.get("page", "1"))
        if path == "/link":
            more = {"link": f'</link?page={page + 1}>; rel="next"'} if page < 3 else {}
            return 200, more, [{"id": f"L{page}-{i}"} for i in range(4)]
        if path == "/cursor":
            at = int(query.get("cursor", "0"))
            return 200, {}, {"data": [{"id": f"C{at}-{i}"} for i in range(2)], "next": str(at + 1) if at < 2 else None}
        if path == "/pages":
            return 200, {}, [{"id": f"P{page}-{i}"} for i in range(3)] if page <= 3 else []
        if path == "/etag":
            items = [{"id": f"E{page}-{i}", "version": self.version} for i in range(2)]
            etag = '"' + hashlib.sha256(json.dumps(items).encode()).hexdigest()[:16] + '"'
            extra = {"etag": etag} | ({"link": f'</etag?page={page + 1}>; rel="next"'} if page < 2 else {})
            if headers.get("if-none-match") == etag:
                return 304, extra, None
            return 200, extra, items
        if path == "/flaky":
            if len(self.requests("/flaky")) < self.flaky_failures:
                return 503, {"retry-after": "0"}, {"error": "busy"}
            return 200, {}, [{"id": "F"}]
        if path == "/numbers":
            return 200, {}, [{"id": 1, "nested": {"a": 1}}, {"id": 2, "nested": {"a": 2}}]
        if path == "/scalars":
            return 200, {}, [1, 2, 3]
        if path == "/broken":
            return 500, {}, {"error": "broken"}
        if path == "/notjson":
            return 200, {}, "not json at all"
        if path == "/slow":
            self._stopping.wait(self.slow_s)
            return 200, {}, [{"id": "S"}]
        if path == "/gate":
            with self._lock:  # a barrier: requests pass in groups of ``gate`` (or alone after ``gate_timeout``)
                generation = self._generation
                self._arrived += 1
                if self._arrived >= self.gate:
                    self._generation, self._arrived = generation + 1, 0
                    self._lock.notify_all()
                elif not self._lock.wait_for(
                    lambda: self._generation != generation or self._stopping.is_set(), timeout=self.gate_timeout
                ):
                    self._arrived -= 1
            return 200, {}, [{"id": "G"}]
        if path == "/elsewhere":
            if query.get("as") == "cursor":
                return 200, {}, {"data": [{"id": "H"}], "next": f"{self.elsewhere}/link"}
            return 200, {"link": f'<{self.elsewhere}/link>; rel="next"'}, [{"id": "H"}]
        if path == "/auth":
            ok = all(headers.get(k.lower()) == v for k, v in self.expected_auth.items())
            return (200, {}, [{"id": "A"}]) if ok else (401, {}, {"error": "unauthorised"})
        return 404, {}, {"error": "missing"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def handle(self) -> None:
                with contextlib.suppress(ConnectionError):  # the client gave up (a timeout test)
                    super().handle()

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                headers = {k.lower(): v for k, v in self.headers.items()}
                with api._lock:
                    api.in_flight += 1
                    api.max_in_flight = max(api.max_in_flight, api.in_flight)
                    api._lock.notify_all()
                try:
                    status, extra, payload = api.answer(parts.path, query, headers)
                finally:
                    with api._lock:
                        api.in_flight -= 1
                api.seen.append(Seen(parts.path, query, headers, status))
                body = b"" if status == 304 else (payload if isinstance(payload, str) else json.dumps(payload)).encode()
                self.send_response(status)
                for key, value in extra.items():
                    self.send_header(key, value)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
