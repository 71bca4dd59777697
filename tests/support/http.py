"""Real HTTP servers on loopback: webhook receivers for delivery tests, and ``Served`` for any handler.

A ``WebhookReceiver`` is a ``ThreadingHTTPServer`` in a thread on a free 127.0.0.1 port. It records every
request and lets a test wait for the Nth one on a Condition (no sleeping to synchronise). Its behaviour is
configurable: fail the first N requests, always answer a status (410, a 302 redirect...), add Retry-After,
answer slowly or only when the test says so, or go down and come back on the same port.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


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
