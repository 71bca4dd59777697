"""Serving the API with uvicorn: one listener, or two when the dashboard has its own (``--dashboard-port``).

Both listeners belong to one uvicorn server and one app (one Redis pool, one lifespan); the app tells them
apart by the local port a request came in on (``api.listeners``).

The app checks the exact header and URL limits (``api.limits``), but only once uvicorn has buffered the
whole request head, and uvicorn's httptools parser buffers any amount. So the server's protocol also stops
reading a head at ``HEAD_CAP`` bytes and answers 431 (414 while still in the URL) at once: one connection can
never make the API hold more than that (plus one read) of a request head. Nor can it take longer than
``head_timeout`` to send one (uvicorn times out only idle kept-alive connections): a head still incomplete
then gets 408, and a connection that sent nothing is closed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from typing import Any

import click

log = logging.getLogger("backburner.api")

#: Bytes of request line and headers read before the app has a say (the app's own limits are 8 + 32 KB).
HEAD_CAP = 64 * 1024
URL_CAP = 8 * 1024


def _protocol(head_timeout: float) -> Any:
    """httptools (uvicorn's default) with a bounded request head, in size and time; h11 (bounded in size by
    uvicorn) when it is missing."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return "h11"

    class BoundedHttpTools(HttpToolsProtocol):
        _head_bytes = 0
        _in_head = True
        _refused = False
        _head_timer: asyncio.TimerHandle | None = None
        _begun = False  # a request's first byte arrived (its head may still be incomplete)

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._begun = True
            if self._head_timer is None:  # a kept-alive connection's next request
                self._arm()

        def _arm(self) -> None:
            self._head_timer = self.loop.call_later(head_timeout, self._too_slow)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _too_slow(self) -> None:
            self._head_timer = None
            if self._refused or self.transport.is_closing():
                return
            if self.cycle is not None and not self.cycle.response_complete:
                self._arm()  # a pipelined head behind an answer still being sent: judged once that is done
            elif not self._begun:
                self._refused = True
                self.transport.close()  # nothing sent: nothing to answer
            else:
                message = f"The request line and headers did not arrive within {head_timeout:g} s."
                self._answer(408, "Request Timeout", "request_timeout", message)

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            if self._in_head:
                if self._head_bytes > HEAD_CAP:
                    self._refuse()
                    return
                self._head_bytes += len(data)
            super().data_received(data)

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._disarm()
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_head, self._head_bytes, self._begun = True, 0, False

        def _refuse(self) -> None:
            in_url = not getattr(self, "headers", None) and len(getattr(self, "url", b"")) > URL_CAP
            what = "The URL is" if in_url else "The request line and headers are"
            message = f"{what} over {HEAD_CAP // 1024} KB."
            self._answer(414, "URI Too Long", "url_too_long", message) if in_url else self._answer(
                431, "Request Header Fields Too Large", "headers_too_large", message)  # fmt: skip

        def send_400_response(self, msg: str) -> None:
            """Malformed HTTP (a control character in a header, say): JSON like every other error."""
            self._answer(400, "Bad Request", "bad_request", f"{msg.rstrip('.')}: this is not well-formed HTTP/1.1.")

        def _answer(self, status: int, reason: str, code: str, message: str) -> None:
            body = json.dumps({"error": {"code": code, "message": message}}).encode()
            head = f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            head += f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
            self._refused = True
            self.transport.write(head.encode() + body)
            self.transport.close()

    return BoundedHttpTools


def serve_api(settings: Any, host: str, port: int, dashboard_host: str | None, dashboard_port: int | None) -> None:
    import uvicorn

    from api.app import create_app
    from api.listeners import Listen
    from jobs.errors import ConfigError

    if dashboard_port is not None and dashboard_port == port:
        raise click.ClickException(f"--dashboard-port must differ from --port ({port}).")
    listen = Listen(host, port, dashboard_host or host if dashboard_port else None, dashboard_port)
    try:
        app = create_app(settings, listen=listen)
    except ConfigError as exc:
        raise click.ClickException(exc.message) from None
    options: dict[str, Any] = {
        "log_level": "info",
        "access_log": False,
        "log_config": None,
        "http": _protocol(settings.head_timeout),
        "h11_max_incomplete_event_size": HEAD_CAP,
    }
    # One socket per listener, bound here so that a port in use is one line, and the same options for
    # both: a Config built without ``log_config=None`` would reset logging to uvicorn's own (plain text, an
    # access log with every query string, no redaction).
    config = uvicorn.Config(app, host=host, port=port, **options)
    sockets = [_bind(host, port, "--port")]
    if dashboard_port is not None:
        dashboard_host = listen.dashboard_host or host
        sockets.append(_bind(dashboard_host, dashboard_port, "--dashboard-port"))
        log.info("Dashboard on its own listener: http://%s:%d/", _shown(dashboard_host), dashboard_port)
    uvicorn.Server(config).run(sockets=sockets)


def _bind(host: str, port: int, flag: str) -> socket.socket:
    """A socket bound as uvicorn binds one, or one line saying why it cannot be (never uvicorn's exit)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise click.ClickException(
            f"cannot listen on {_shown(host)}:{port} ({exc.strerror or exc}); choose another port with {flag}"
        ) from None
    sock.set_inheritable(True)
    return sock


def _shown(host: str) -> str:
    return f"[{host}]" if ":" in host else host
