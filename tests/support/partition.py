"""A TCP relay in front of a real server that a test can cut, as a network partition would cut one host off."""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class Relay:
    """Forwards connections on ``port`` to ``target``; ``cut()`` stops every byte both ways and leaves new
    connections hanging (nothing is refused or reset: the far side only times out), ``heal()`` drops the
    connections that were cut and lets new ones through again."""

    def __init__(self, target: int, port: int = 0) -> None:
        """``port``: listen there (a relay closed earlier, open again), else on a free port."""
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", port))
        self.port: int = self._listener.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()
        self._live: list[socket.socket] = []
        self._cut: list[socket.socket] = []
        self._closed = False

    def through(self, url: str) -> str:
        """``url`` (of the target, on loopback) leading through this relay instead."""
        return url.replace(f"127.0.0.1:{self.target}", f"127.0.0.1:{self.port}")

    def __enter__(self) -> Relay:
        threading.Thread(target=self._accept, name="relay-accept", daemon=True).start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._closed = True
        with contextlib.suppress(OSError):  # wakes the accepting thread, so the port is free when this returns
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self.heal()
        with self._lock:
            for sock in self._live:
                with contextlib.suppress(OSError):
                    sock.close()

    def cut(self) -> None:
        with self._lock:
            self._open.clear()
            self._cut, self._live = self._cut + self._live, []

    def heal(self) -> None:
        with self._lock:
            for sock in self._cut:  # shutdown first: a pump blocked in recv() would keep a closed socket open
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()
            self._cut = []
            self._open.set()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), name="relay-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        self._open.wait()  # during a cut the client's connection hangs here, unanswered
        if self._closed:  # accepted as the relay closed
            conn.close()
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target))
        except OSError:
            conn.close()
            return
        with self._lock:
            self._live += [conn, upstream]
        for source, sink in ((conn, upstream), (upstream, conn)):
            threading.Thread(target=self._pump, args=(source, sink), name="relay-pump", daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                with self._lock:
                    cut = source in self._cut
                if cut:  # a partition: the bytes go nowhere, and the connection is dropped when it heals
                    continue
                sink.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_RDWR)
