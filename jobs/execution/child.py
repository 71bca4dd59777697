"""The child process side: load the function's module, call its handler, send back the outcome.

This module is preloaded by the fork server, so it imports only what every attempt needs.

A child is a session leader and a subreaper, so everything its attempts start stays in its process tree
(``jobs.execution.proctree``); whatever an attempt leaves running when it ends is killed then. Handlers
see the worker's environment without Backburner's own secrets, plus their function's ``environment``.
A result must be JSON, at most ``max_result`` bytes of it; otherwise the run fails at once, saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import inspect
import json
import os
import pickle
import signal
import sys
import traceback
from collections.abc import Iterator
from multiprocessing.connection import Connection
from types import FrameType, ModuleType
from typing import Any

from ..retry import steering
from ..runs import json_bytes, storable
from . import proctree
from .capture import Capture
from .context import Context
from .output import CLOSE_WAIT_S, LogStream
from .secrets import Redactor, redactor, scrub_environ, secrets_from_environment, url_password
from .task import Task
from .tether import Guard, Line

_modules: dict[str, tuple[float, ModuleType]] = {}
#: This child's file descriptors 1 and 2, captured for the attempt running (set up by ``child_main``).
_capture: list[Capture] = []


#: The modules imported from function folders (a function's own helpers), by name: folder, file, mtime.
_siblings: dict[str, tuple[str, str, float]] = {}
#: Function folders this child put on ``sys.path``, and the modules ``sys.modules`` held at the last look.
_folders: set[str] = set()
_known_modules: set[str] = set()


def _load(function: str, path: str) -> ModuleType:
    """Import the function's file, again only when it or a module beside it changed (so `dev` picks up edits).

    Modules beside the function's file import as in Lambda (its folder leads ``sys.path``). A warm child serves
    many functions, so they are the function's own: another function's ``helper.py`` (from another folder)
    is never the one this one imports, and an edited helper is imported afresh, with the functions using it.
    """
    folder = os.path.dirname(path)  # what Path(path).parent gives, at a twentieth of the cost
    _own_siblings(folder)
    mtime = os.stat(path).st_mtime
    cached = _modules.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    name = "netlify_function_" + function.replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    _modules[path] = (mtime, module)
    return module


def _note_siblings() -> None:
    """Note the modules an attempt imported from function folders, and their files' mtimes (at its end)."""
    if len(sys.modules) == len(_known_modules):  # nothing imported (nor forgotten) since the last look
        return
    names = list(sys.modules)  # a copy in one step: a thread the handler left may be importing meanwhile
    for name in [name for name in names if name not in _known_modules]:
        file = getattr(sys.modules.get(name), "__file__", None)
        if isinstance(file, str) and not name.startswith("netlify_function_"):
            owner = max((f for f in _folders if file.startswith(f + os.sep)), key=len, default=None)
            if owner is not None:
                _siblings[name] = (owner, file, _mtime(file))
    _known_modules.clear()
    _known_modules.update(names)


def _own_siblings(folder: str) -> None:
    """Put ``folder`` first on ``sys.path`` (and no other function's folder on it), and forget the modules
    imported from another function folder or changed since, with the function modules that imported them."""
    stale = {owner for owner, file, mtime in _siblings.values() if owner != folder or _mtime(file) != mtime}
    if stale:
        gone = [name for name, (owner, _, _) in _siblings.items() if owner in stale]
        gone += [_modules.pop(path)[1].__name__ for path in list(_modules) if os.path.dirname(path) in stale]
        for name in gone:
            sys.modules.pop(name, None)
            _siblings.pop(name, None)
            _known_modules.discard(name)  # imported again, it is noted again
    if not sys.path or sys.path[0] != folder:
        sys.path[:] = [folder, *(entry for entry in sys.path if entry != folder and entry not in _folders)]
        _folders.add(folder)


def _mtime(file: str) -> float:
    try:
        return os.stat(file).st_mtime
    except OSError:
        return -1.0


def _error(exc: BaseException, redactor: Redactor) -> dict[str, Any]:
    """The handler's exception as the run shows it (type, message, traceback), secrets redacted."""
    tb = exc.__traceback__
    if tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next  # our own `invoke` frame is noise in the user's traceback
    return {  # storable: a lone surrogate in the text would fail the JSON answer of a synchronous call
        "type": storable(type(exc).__name__),
        "message": storable(redactor(str(exc))),
        "traceback": storable(redactor("".join(traceback.format_exception(type(exc), exc, tb, limit=30)))),
        **steering(exc),
    }


def size_text(size: float) -> str:
    """``1 MB``, ``2.5 GB``: binary units, as ``memory_limit`` and ``max_result`` are written."""
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{int(size)} bytes"


def sizes_over(size: float, limit: int) -> tuple[str, str]:
    """``size`` and ``limit`` as ``size_text`` writes them, in bytes where rounding would make them read alike
    ("1 MB of JSON, over its max_result of 1 MB")."""
    if size_text(size) != size_text(limit):
        return size_text(size), size_text(limit)
    return f"{int(size):,} bytes", f"{size_text(limit)} ({limit:,} bytes)"


def encode_result(function: str, value: Any, max_result: int | None) -> tuple[str | None, dict[str, Any] | None]:
    """The result as JSON text, or why it cannot be kept (an error that is not retried: it would fail again)."""
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
        size = json_bytes(text)  # UnicodeEncodeError for a lone surrogate ("\ud800"): no record could hold it
    except (TypeError, ValueError, RecursionError) as exc:
        if isinstance(exc, UnicodeEncodeError):
            why = "a string holds a lone surrogate, which is not text"
        else:
            why = "NaN or infinity" if isinstance(exc, ValueError) else str(exc)
        message = (
            f"{function} returned a result that is not JSON ({why}); return dicts, lists, strings, finite "
            "numbers, booleans or None (no sets, bytes, NaN or objects)"
        )
        return None, {"type": "InvalidResult", "message": message, "traceback": None, "retry": False}
    if max_result is not None and size > max_result:
        shown, limit = sizes_over(size, max_result)
        message = (
            f"{function} returned {shown} of JSON, over its max_result of {limit}; "
            "write big outputs with context.artifacts.write() and return a reference to them"
        )
        return None, {"type": "ResultTooLarge", "message": message, "traceback": None, "retry": False}
    return text, None


@contextlib.contextmanager
def _environment(variables: tuple[tuple[str, str], ...]) -> Iterator[None]:
    """The function's ``environment`` table in ``os.environ`` for one attempt (children inherit it)."""
    saved = {name: os.environ.get(name) for name, _ in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


_secrets: dict[str, Any] = {}


def _environment_secrets() -> list[str]:
    """``secrets_from_environment()``, read again only when the environment changed (a handler may set a
    secret; reading ``os.environ`` through its mapping costs about 50 µs a time, the check below 1 µs)."""
    data = getattr(os.environ, "_data", None)  # the environment as one plain dict, in CPython
    if not isinstance(data, dict):
        return secrets_from_environment()
    if _secrets.get("data") != data:
        _secrets["data"], _secrets["found"] = dict(data), secrets_from_environment()
    found: list[str] = _secrets["found"]
    return found


def invoke(task: Task) -> tuple[str, Any]:
    """Run one attempt; returns ``("ok", '{"result": ..., "artifacts": [...]}')`` or ``("error", {...})``."""
    function_secrets = secrets_from_environment(dict(task.environment)) if task.environment else []
    redacting = redactor((*_environment_secrets(), *function_secrets, *url_password(task.context.redis_url)))
    stdout, stderr = sys.stdout, sys.stderr
    context = Context(task.context, redactor=redacting, echo={"stdout": stdout, "stderr": stderr})
    sys.stdout = LogStream(context.run_log, "stdout")
    sys.stderr = LogStream(context.run_log, "stderr")
    for capture in _capture:
        capture.attach(context.run_log, redacting)
    try:
        with _environment(task.environment):
            module = _load(task.function, task.path)
            handler = getattr(module, "handler", None)
            if not callable(handler):
                raise TypeError(f"{task.path} has no handler(event, context) function")
            value = handler(task.event, context)
            if inspect.isawaitable(value):
                value = asyncio.run(_await(value))
        text, problem = encode_result(task.function, value, task.context.max_result)
        if context.saw_cancel:  # it stopped early, as asked: the run is cancelled, with what it returned
            return "cancelled", f'{{"result": {text if problem is None else "null"}, "artifacts": []}}'
        if problem is not None:
            return "error", problem
        written = list(context.artifacts.written)
        return "ok", f'{{"result": {text}, "artifacts": {json.dumps(written)}}}'
    except BaseException as exc:  # the handler's failure is data for the parent, never our crash
        error = _error(exc, redacting)
        # In the run's log too, where `logs --follow` and the dashboard's log show it, as a Lambda's log does.
        context.run_log.write_lines(str(error["traceback"]).splitlines(), level="ERROR")
        if context.saw_cancel:  # it failed after the cancel: no retry for a run that was cancelled
            return "cancelled", '{"result": null, "artifacts": []}'
        return "error", error
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        sys.stdout, sys.stderr = stdout, stderr
        _note_siblings()
        for capture in _capture:
            capture.detach()
        context.run_log.close(wait_s=CLOSE_WAIT_S)


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
    proctree.die_with_parent(signal.SIGKILL)


def _ignore(signum: int, frame: FrameType | None) -> None:
    """SIGTERM and SIGINT are the worker's to handle. A handler, not SIG_IGN: exec resets it to the default."""


def _default_signals() -> None:
    """In a process the handler forks: SIGTERM and SIGINT do what they normally do."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)


def contain() -> None:
    """Set this child up: its own session, a subreaper, the worker's signals ignored, no secrets in sight."""
    with contextlib.suppress(OSError):
        os.setsid()  # its own session and process group: a terminal's Ctrl-C or a group signal is not for it
    proctree.set_subreaper()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _ignore)
    os.register_at_fork(after_in_child=_default_signals)
    scrub_environ()
    _die_with_parent()


def _reap_leftovers() -> None:
    """Kill whatever the attempt left running (it dies with its attempt), and collect it.

    Most attempts start no process: one ``waitpid`` that finds no child at all, running or exited, says so
    (this child is a subreaper, so an orphaned grandchild is its child) and spares reading /proc (30 µs)."""
    try:
        os.waitpid(-1, os.WNOHANG)  # an exited child collected here is one fewer for reap() below
    except ChildProcessError:
        return
    if proctree.children(os.getpid()):
        proctree.kill_tree(os.getpid(), include_root=False)
    proctree.reap()


def child_main(conn: Connection, line: Line) -> None:
    """Serve attempts until the parent closes the pipe or sends ``None``; ``line``: see ``jobs.execution.tether``."""
    contain()
    capture = Capture()
    _capture.append(capture)
    sys.stdout, sys.stderr = capture.real["stdout"], capture.real["stderr"]  # what attempts' lines echo to
    guard = Guard(line).start()
    while True:
        try:
            task = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        if task is None:
            return
        with guard.attempt():
            outcome = invoke(task)
            _reap_leftovers()
            try:
                data = pickle.dumps(outcome, pickle.HIGHEST_PROTOCOL)
            except Exception as exc:  # an unpicklable error payload: send its text instead
                error = {"type": type(exc).__name__, "message": storable(str(exc)), "traceback": None}
                data = pickle.dumps(("error", error))
        conn.send_bytes(data)
