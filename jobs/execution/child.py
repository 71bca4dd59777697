"""The child process side: load the function's module, call its handler, send back the outcome.

This module is preloaded by the fork server, so it imports only what every attempt needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import inspect
import io
import json
import os
import pickle
import signal
import sys
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from types import ModuleType
from typing import Any

from ..retry import steering
from .context import Context, RunLog
from .task import Task

_modules: dict[str, tuple[float, ModuleType]] = {}


def _load(function: str, path: str) -> ModuleType:
    """Import the function's file, again only when it changed (so `dev` picks up edits)."""
    mtime = os.stat(path).st_mtime
    cached = _modules.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    name = "netlify_function_" + function.replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    folder = str(Path(path).parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # sibling modules of the function import as in Lambda
    sys.modules[name] = module
    spec.loader.exec_module(module)
    _modules[path] = (mtime, module)
    return module


class _LogStream(io.TextIOBase):
    """Sends whole lines written to stdout/stderr to the run's log, and on to the real stream."""

    def __init__(self, log: RunLog, name: str, passthrough: Any) -> None:
        self._log = log
        self._name = name
        self._passthrough = passthrough
        self._buffer = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._passthrough.write(text)
        self._buffer += text
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            self._log.write(line, stream=self._name)
        return len(text)

    def flush(self) -> None:
        if self._buffer:
            self._log.write(self._buffer, stream=self._name)
            self._buffer = ""
        self._passthrough.flush()


def _error(exc: BaseException) -> dict[str, Any]:
    tb = exc.__traceback__
    if tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next  # our own `invoke` frame is noise in the user's traceback
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(type(exc), exc, tb, limit=30)),
        **steering(exc),
    }


def invoke(task: Task) -> tuple[str, Any]:
    """Run one attempt; returns ``("ok", result_json)`` or ``("error", {type, message, traceback})``."""
    context = Context(task.context)
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout = _LogStream(context.run_log, "stdout", stdout)
    sys.stderr = _LogStream(context.run_log, "stderr", stderr)
    try:
        module = _load(task.function, task.path)
        handler = getattr(module, "handler", None)
        if not callable(handler):
            raise TypeError(f"{task.path} has no handler(event, context) function")
        value = handler(task.event, context)
        if inspect.isawaitable(value):
            value = asyncio.run(_await(value))
        written = context.artifacts.written if context.artifacts is not None else []
        return "ok", json.dumps({"result": value, "artifacts": written}, default=str)
    except BaseException as exc:  # the handler's failure is data for the parent, never our crash
        return "error", _error(exc)
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        sys.stdout, sys.stderr = stdout, stderr


async def _await(value: Any) -> Any:
    return await value


def _die_with_parent() -> None:
    """Make sure a SIGKILLed worker leaves no orphan attempt running beside the resumed one.

    The fork server exits once no process holds its "alive" pipe; every child inherits a copy,
    so we drop ours. Then, on Linux, the kernel kills this child when the fork server goes.
    """
    try:
        from multiprocessing import forkserver

        server: Any = forkserver._forkserver
        if server._forkserver_alive_fd is not None:
            os.close(server._forkserver_alive_fd)
            server._forkserver_alive_fd = None
    except (AttributeError, OSError):
        pass
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def child_main(conn: Connection) -> None:
    """Serve attempts until the parent closes the pipe or sends ``None``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in `dev` is the parent's to handle
    _die_with_parent()
    while True:
        try:
            task = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        if task is None:
            return
        outcome = invoke(task)
        try:
            data = pickle.dumps(outcome, pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # an unpicklable error payload: send its text instead
            data = pickle.dumps(("error", {"type": type(exc).__name__, "message": str(exc), "traceback": None}))
        conn.send_bytes(data)
