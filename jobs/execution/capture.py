"""What an attempt writes below Python's ``sys.stdout`` reaches its run's log too, redacted.

``output.LogStream`` stands in for ``sys.stdout`` and ``sys.stderr``, but a subprocess, ``os.write(1, ...)``,
``sys.__stdout__`` or a C library writes to file descriptors 1 and 2 themselves. So a child points those at
pipes once, when it starts, and a thread of its own reads them into the current attempt's log; the end of an
attempt drains what is left before the log closes. What arrives between attempts (a leftover process, before
it is killed) goes on to the worker's own output, redacted as the last attempt's lines were.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import select
import sys
import threading
from typing import TextIO

from .output import LogStream, RunLog
from .secrets import Redactor

_STREAMS = ((1, "stdout"), (2, "stderr"))


class Capture:
    """File descriptors 1 and 2 of this process, captured; ``real`` holds the streams they were."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: dict[int, str] = {}
        self._decoders = {name: codecs.getincrementaldecoder("utf-8")("replace") for _, name in _STREAMS}
        self._sinks: dict[str, LogStream] | None = None
        self._streams: dict[str, LogStream] = {}  # reused attempt after attempt (a LogStream costs ~2 us to make)
        self._redactor: Redactor | None = None
        self._ready = select.poll()  # which pipes hold something, in one call and without an exception per pipe
        #: Pipes whose every write end closed (a handler that closed fd 1 and its copies): no more to read.
        self._ended: set[int] = set()
        self.real: dict[str, TextIO] = {}
        for fd, name in _STREAMS:
            with_python = sys.stdout if fd == 1 else sys.stderr
            if with_python is not None:
                with_python.flush()
            real = os.dup(fd)
            read, write = os.pipe()
            os.dup2(write, fd)
            os.close(write)
            os.set_blocking(read, False)
            self._names[read] = name
            self._ready.register(read, select.POLLIN)
            self.real[name] = open(real, "w", encoding="utf-8", errors="backslashreplace", buffering=1)  # noqa: SIM115
        threading.Thread(target=self._pump, name="backburner-capture", daemon=True).start()

    def attach(self, log: RunLog, redactor: Redactor) -> None:
        """From now on, lines go to ``log`` (an attempt starts)."""
        with self._lock:
            for _, name in _STREAMS:
                stream = self._streams.get(name)
                if stream is None:
                    stream = self._streams[name] = LogStream(log, name)
                stream.start(log)
            self._sinks = self._streams
            self._redactor = redactor

    def detach(self) -> None:
        """Everything written so far goes to the attempt's log, the last unfinished line too (it ends)."""
        with self._lock:
            for fd, _ in self._ready.poll(0):
                self._read(fd)
                if fd in self._ended:
                    self._ready.unregister(fd)
            for sink in (self._sinks or {}).values():
                sink.flush()
            self._sinks = None

    def _pump(self) -> None:
        poller = select.poll()  # its own: a poll object serves one thread at a time
        for fd in self._names:
            poller.register(fd, select.POLLIN)
        while True:
            for fd, _ in poller.poll():
                # A line that cannot be kept must not stop the capture: the pipe would fill and block the writer.
                with self._lock, contextlib.suppress(Exception):
                    self._read(fd)
                if fd in self._ended:
                    poller.unregister(fd)  # else poll() would answer at once, for ever

    def _read(self, fd: int) -> None:
        name = self._names[fd]
        while True:
            try:
                data = os.read(fd, 1 << 16)
            except BlockingIOError:
                return
            if not data:
                self._ended.add(fd)
                return
            text = self._decoders[name].decode(data)
            if self._sinks is not None:
                self._sinks[name].write(text)
                continue
            try:
                self.real[name].write(self._redactor(text) if self._redactor is not None else text)
                self.real[name].flush()
            except (OSError, ValueError):  # the worker's own stream is gone
                pass
