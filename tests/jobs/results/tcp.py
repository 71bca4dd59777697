"""A TCP forwarder that can play an outage: while down it accepts and drops every connection at once (as a
load balancer with no healthy backend does), while up it pipes bytes to the target port."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading


class Switch:
    def __init__(self, target_port: int, *, up: bool = True) -> None:
        self.target_port = target_port
        self.up = up
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name=f"switch:{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Switch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self.up:
                # SO_LINGER 0: close with a reset, so the client sees the failure at once.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                conn.close()
                continue
            upstream.settimeout(None)
            conn.settimeout(None)
            done = threading.Semaphore(0)
            for source, sink in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=_pipe, args=(source, sink, done), daemon=True).start()
            threading.Thread(target=_close_after, args=(done, conn, upstream), daemon=True).start()


def _pipe(source: socket.socket, sink: socket.socket, done: threading.Semaphore) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
    done.release()


def _close_after(done: threading.Semaphore, *sockets: socket.socket) -> None:
    done.acquire()
    done.acquire()
    for sock in sockets:
        sock.close()
