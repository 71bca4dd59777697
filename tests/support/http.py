"""Real HTTP servers on loopback: webhook receivers for delivery tests, ``Served`` for any handler (a ``Quiet``
one), and ``StreamProxy``, a proxy in front of the API that refuses or rewrites its live streams.

A ``WebhookReceiver`` is a ``ThreadingHTTPServer`` in a thread on a free 127.0.0.1 port. It records every
request and lets a test wait for the Nth one on a Condition (no sleeping to synchronise). Its behaviour is
configurable: fail the first N requests, always answer a status (410, a 302 redirect...), add Retry-After,
answer slowly or only when the test says so, or go down and come back on the same port.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    at: float = field(default_factory=time.time)


@dataclass
class Behaviour:
    """How to answer: the first ``fail_first`` requests get ``fail_status``, later ones ``status``."""

    status: int = 200
    fail_first: int = 0
    fail_status: int = 500
    retry_after: str | None = None  # sent with failures (and with ``status`` when it is not 2xx)
    location: str | None = None  # sent with 3xx answers
    delay_s: float = 0.0  # wait this long before answering (cut short when the server stops)
    hold: threading.Event | None = None  # answer only once this is set (or the server stops)
    body: bytes = b"ok"


class WebhookReceiver:
    """A loopback HTTP endpoint that records requests. Use as a context manager or call start()/stop()."""

    def __init__(self, port: int = 0, **behaviour: Any) -> None:
        self.behaviour = Behaviour(**behaviour)
        self.port = port
        self._requests: list[Received] = []
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> WebhookReceiver:
        """Listen (again) on the same port; a restarted receiver keeps its recorded requests."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                receiver._answer(self)

            do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = _handle

        self._stopping.clear()
        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name=f"receiver:{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening: connections to the port are refused until start() is called again."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def configure(self, **changes: Any) -> None:
        for name, value in changes.items():
            if not hasattr(self.behaviour, name):
                raise AttributeError(f"no behaviour {name!r}")
            setattr(self.behaviour, name, value)

    # -- recording ---------------------------------------------------------------------------------------
    @property
    def requests(self) -> list[Received]:
        with self._changed:
            return list(self._requests)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Block until at least ``count`` requests arrived; AssertionError after ``timeout`` seconds."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._requests) >= count, timeout=timeout):
                raise AssertionError(f"expected {count} requests within {timeout} s, got {len(self._requests)}")
            return list(self._requests)

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in handler.headers.items()}
        with self._changed:
            self._requests.append(Received(handler.command, handler.path, headers, body))
            number = len(self._requests)
            self._changed.notify_all()
        plan = self.behaviour
        if plan.delay_s and self._stopping.wait(plan.delay_s):
            return  # stopping: drop the connection unanswered
        while plan.hold is not None and not plan.hold.wait(0.05):
            if self._stopping.is_set():
                return
        status = plan.fail_status if number <= plan.fail_first else plan.status
        with contextlib.suppress(OSError):  # the client may have given up (timed out) meanwhile
            handler.send_response(status)
            if plan.retry_after is not None and status >= 300:
                handler.send_header("Retry-After", plan.retry_after)
            if plan.location is not None and 300 <= status < 400:
                handler.send_header("Location", plan.location)
            handler.send_header("Content-Type", "text/plain")
            handler.send_header("Content-Length", str(len(plan.body)))
            handler.end_headers()
            handler.wfile.write(plan.body)


class Served:
    """``handler`` served by a ``ThreadingHTTPServer`` in a thread on a free 127.0.0.1 port, until ``close``
    (tests' stand-ins for a proxy or an API that misbehaves subclass it)."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, name=f"served:{self.url}", daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Quiet(BaseHTTPRequestHandler):
    """A request handler that logs nothing, with the two steps every stand-in server takes."""

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def answer(self, status: int, content: bytes, content_type: str, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(content)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class StreamProxy(Served):
    """A reverse proxy in front of ``upstream`` that answers the live streams (``/events``, ``?follow=1``) itself,
    with ``status``, ``content`` and ``content_type`` (as a proxy that refuses or buffers them would), counting
    them in ``intercepted``, and forwards everything else."""

    def __init__(self, upstream: str, status: int, content: bytes = b"", content_type: str = "text/html") -> None:
        proxy = self
        self.intercepted = 0

        class Handler(Quiet):
            def do_GET(self) -> None:
                if self.path.split("?")[0].endswith("/events") or "follow=1" in self.path:
                    proxy.intercepted += 1
                    self.answer(status, content, content_type)
                    return
                self._forward(httpx.get(upstream + self.path))

            def do_POST(self) -> None:
                headers = {"content-type": self.headers.get("content-type") or "application/json"}
                self._forward(httpx.post(upstream + self.path, content=self.body(), headers=headers))

            def _forward(self, answer: httpx.Response) -> None:
                kept = {name: value for name in ("x-nf-request-id", "location") if (value := answer.headers.get(name))}
                self.answer(answer.status_code, answer.content, answer.headers.get("content-type", "text/plain"), kept)

        super().__init__(Handler)
