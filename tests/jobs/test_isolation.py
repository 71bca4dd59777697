"""The child pool: hard limits, crashes, async handlers and warm reuse, with real processes."""

import os
import signal
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from jobs.execution.isolation import ChildPool
from jobs.execution.task import Task, attempt_context
from jobs.runs import Result
from tests.support.procs import state, wait_for

SOURCE = """
import ctypes, json, os, time

def handler(event, context):
    mode = event.get("mode")
    if mode == "sleep":
        time.sleep(600)
    if mode == "busy":
        while True:
            pass
    if mode == "c-sleep":
        ctypes.CDLL(None).sleep(600)   # blocked in C, no bytecode runs
    if mode == "exit":
        os._exit(3)
    if mode == "segv":
        ctypes.string_at(0)
    if mode == "raise":
        raise KeyError("missing")
    if mode == "print":
        print("to stdout")
    if mode == "unserializable":
        return {"when": object()}
    if mode == "nap":
        time.sleep(1)
    if mode == "close-fds":  # what a daemonising handler might do
        os.close(1)
        os.close(2)
    if mode == "gate":  # says its pid and its subprocess's, then waits for the gate file
        import subprocess
        sub = subprocess.Popen(["sleep", "600"])
        with open(event["path"] + ".tmp", "w") as out:
            out.write(f"{os.getpid()} {sub.pid}")
        os.replace(event["path"] + ".tmp", event["path"] + ".pids")
        while not os.path.exists(event["path"]):
            time.sleep(0.02)
        sub.kill()
        sub.wait()
        return {"gate": True}
    return {"pid": os.getpid(), "attempt": context.attempt,
            "remaining": context.get_remaining_time_in_millis()}
"""

ASYNC_SOURCE = """
import asyncio
async def handler(event, context):
    await asyncio.sleep(0.01)
    return {"async": True, "run": context.run_id}
"""


@pytest.fixture(scope="module")
def pool():
    p = ChildPool(2).start()
    yield p
    p.close()


@pytest.fixture(scope="module")
def fn(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fn")
    (folder / "f.py").write_text(textwrap.dedent(SOURCE))
    (folder / "a.py").write_text(textwrap.dedent(ASYNC_SOURCE))
    return folder


def task(fn: Path, mode: str | None = None, name: str = "f", limit: float = 5.0) -> Task:
    return Task(
        name,
        str(fn / f"{name}.py"),
        {"mode": mode},
        attempt_context(name, "r1", limit, attempt=2, namespace="t"),
    )


def test_result_and_context(pool, fn):
    result = pool.run(task(fn), 5)
    assert result.kind == "ok"
    assert result.value["attempt"] == 2
    assert 0 < result.value["remaining"] <= 5000


@pytest.mark.parametrize("mode", ["sleep", "busy", "c-sleep"])
def test_hard_limit_kills_the_child_whatever_it_does(pool, fn, mode):
    started = time.monotonic()
    result = pool.run(task(fn, mode), 0.5)
    elapsed = time.monotonic() - started
    assert result.kind == "timeout"
    assert result.error["type"] == "TimeLimitExceeded"
    assert "0.5s" in result.error["message"]
    assert elapsed < 3, elapsed
    assert pool.run(task(fn), 5).kind == "ok"  # the pool replaced the killed child


@pytest.mark.parametrize(("mode", "why"), [("exit", "exit code 3"), ("segv", "signal SIGSEGV")])
def test_a_crashing_child_fails_the_attempt_not_the_pool(pool, fn, mode, why):
    result = pool.run(task(fn, mode), 5)
    assert result.kind == "crash"
    assert why in result.error["message"]
    assert pool.run(task(fn), 5).kind == "ok"


def test_exception_carries_type_message_and_traceback_of_user_code(pool, fn):
    result = pool.run(task(fn, "raise"), 5)
    assert result.kind == "error"
    assert result.error["type"] == "KeyError"
    assert "missing" in result.error["message"]
    assert "f.py" in result.error["traceback"] and "jobs/child.py" not in result.error["traceback"]


def test_async_handler(pool, fn):
    result = pool.run(task(fn, name="a"), 5)
    assert result.value == {"async": True, "run": "r1"}


def test_children_are_warm_and_reused(pool, fn):
    pids = {pool.run(task(fn), 5).value["pid"] for _ in range(20)}
    assert len(pids) <= 2


def test_a_non_json_result_fails_and_is_not_retried(pool, fn):
    result = pool.run(task(fn, "unserializable"), 5)
    assert result.kind == "error" and result.error["type"] == "InvalidResult" and result.error["retry"] is False
    assert "not JSON" in result.error["message"]


def test_cancel_kills_a_running_child(pool, fn):
    asked = time.monotonic() + 0.3
    result = pool.run(task(fn, "sleep"), 30, cancelled=lambda: time.monotonic() > asked)
    assert result.kind == "cancelled"


class Gated:
    """A ``gate`` attempt (a child and its subprocess, waiting for a file) run by ``pool.run`` in a thread. Its
    ``cancelled`` answers None while ``phase`` is "unknown" (it could not ask), else False, counting the asks;
    with ``held``, the worker is held while ``phase`` is "held"."""

    def __init__(self, pool: ChildPool, fn: Path, tmp_path: Path, phase: str, *, held: bool = False) -> None:
        self.gate, self.phase, self.asked = tmp_path / "gate", phase, 0
        context = attempt_context("f", "r1", 30, namespace="t")
        work = Task("f", str(fn / "f.py"), {"mode": "gate", "path": str(self.gate)}, context)
        options: dict[str, Any] = {"held": lambda: self.phase == "held"} if held else {}
        self.results: list[Result] = []

        def run() -> None:
            self.results.append(pool.run(work, 30, cancelled=self._cancelled, poll_s=0.02, **options))

        self.thread = threading.Thread(target=run)
        self.thread.start()
        pids_file = Path(f"{self.gate}.pids")
        wait_for(pids_file.exists, message="the attempt to start")
        self.pids = [int(pid) for pid in pids_file.read_text().split()]

    def _cancelled(self) -> bool | None:
        self.asked += 1
        return None if self.phase == "unknown" else False

    def states(self) -> list[str]:
        return [state(pid) for pid in self.pids]

    def stays_paused_without_an_answer(self) -> None:
        """Paused, the worker asks again and again; none of its answers is a definite no, so it stays paused."""
        wait_for(lambda: self.states() == ["T", "T"], message="the child and its subprocess to pause")
        self.phase, seen = "unknown", self.asked
        wait_for(lambda: self.asked >= seen + 5, message="the watch to ask again")
        assert self.states() == ["T", "T"], "went on without a definite answer"

    def goes_on_and_ends(self) -> Result:
        self.phase = "go"
        wait_for(lambda: all(pid_state not in ("T", "") for pid_state in self.states()), message="the attempt to go on")
        self.gate.write_text("open")
        self.thread.join(30)
        return self.results[0]


def test_a_held_attempt_is_paused_with_its_subprocesses_and_goes_on_only_on_a_definite_no(pool, fn, tmp_path):
    """``held`` (the worker cannot reach Redis) pauses the whole tree; the attempt goes on only once the worker
    is no longer held and ``cancelled`` says a definite False, not None (it could not ask)."""
    attempt = Gated(pool, fn, tmp_path, "running", held=True)
    attempt.phase = "held"
    attempt.stays_paused_without_an_answer()
    result = attempt.goes_on_and_ends()
    assert result.kind == "ok" and result.value == {"gate": True}


def test_an_attempt_pauses_itself_once_its_worker_is_silent_and_goes_on_only_on_a_definite_no(fn, tmp_path):
    """A worker process stopped on its own cannot pause its attempt (``held``), so the child pauses itself, with
    its subprocess, once the last landed heartbeat it was told of (``tether.landed``) is ``fence_s`` old. Woken,
    the worker holds that pause as its own: the attempt goes on only once ``cancelled`` says a definite False."""
    pool = ChildPool(1, fence_s=2.0).start()
    try:
        pool.tether.landed(time.monotonic())
        attempt = Gated(pool, fn, tmp_path, "unknown")
        assert attempt.states() != ["T", "T"]
        pool.tether.landed(time.monotonic() - 5)  # the worker's last heartbeat that landed was sent 5 s ago
        attempt.stays_paused_without_an_answer()
        pool.tether.landed(time.monotonic())
        result = attempt.goes_on_and_ends()
    finally:
        pool.close()
    assert result.kind == "ok" and result.value == {"gate": True}


def test_modules_beside_a_function_are_its_own_in_a_child_that_serves_several(tmp_path):
    """Two folder functions each import their own ``helper``; one warm child serves both in turn, and an edit
    of a helper counts from the next attempt (a copied example must never run its original's helper)."""
    import os

    for name, value in (("one", "first"), ("two", "second")):
        (tmp_path / name).mkdir()
        source = "import helper\ndef handler(event, context):\n    return {'value': helper.VALUE, 'pid': %s}\n"
        (tmp_path / name / "index.py").write_text(source % "__import__('os').getpid()")
        (tmp_path / name / "helper.py").write_text(f"VALUE = {value!r}\n")
    (tmp_path / "flat.py").write_text(
        "import helper\ndef handler(event, context):\n    return {'value': helper.VALUE}\n"
    )
    (tmp_path / "helper.py").write_text("VALUE = 'flat'\n")

    def call(path):
        work = Task(path.stem, str(path), {}, attempt_context(path.stem, "r1", 30, namespace="t"))
        return pool.run(work, 30).value

    pool = ChildPool(1).start()
    try:
        one, two, flat = tmp_path / "one" / "index.py", tmp_path / "two" / "index.py", tmp_path / "flat.py"
        seen = [call(one), call(two), call(flat), call(one)]
        assert [v["value"] for v in seen] == ["first", "second", "flat", "first"]
        assert len({v["pid"] for v in seen if "pid" in v}) == 1  # one child served them all
        helper = tmp_path / "one" / "helper.py"
        helper.write_text("VALUE = 'edited'\n")
        os.utime(helper, (helper.stat().st_atime, helper.stat().st_mtime + 5))  # a later mtime, whatever the clock
        assert call(one)["value"] == "edited"
        assert call(two)["value"] == "second"
    finally:
        pool.close()


def test_a_handler_that_closes_its_stdout_and_stderr_leaves_a_child_that_serves_on_idle(fn):
    """The capture of file descriptors 1 and 2 sees their pipes end; it must stop watching them, not spin."""
    pool = ChildPool(1).start()
    try:
        assert pool.run(task(fn, "close-fds"), 5).kind == "ok"
        pid = pool.run(task(fn), 5).value["pid"]

        def cpu_ticks() -> int:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])  # utime + stime

        before = cpu_ticks()
        assert pool.run(task(fn, "nap"), 5).value["pid"] == pid  # a second of sleep: the child should idle
        spent = (cpu_ticks() - before) / os.sysconf("SC_CLK_TCK")
        assert spent < 0.3, f"the child spun: {spent:.2f} s of CPU in a one-second sleep"
    finally:
        pool.close()


def test_a_child_that_died_while_idle_is_replaced_not_reported_as_a_crash(fn):
    pool = ChildPool(1).start()
    try:
        first = pool.run(task(fn), 5).value["pid"]
        os.kill(first, signal.SIGKILL)
        pool._idle.queue[0].process.join(10)  # dead, not just signalled
        result = pool.run(task(fn), 5)
        assert result.kind == "ok" and result.value["pid"] != first
    finally:
        pool.close()
