"""Containment, with real processes: everything an attempt starts dies with it (at its limit, on cancel, on a
crash, and when it ends), its children start with default signal dispositions, memory_limit kills it, and a
result must be JSON within max_result."""

from __future__ import annotations

import os
import signal
import textwrap
import threading
import time
from pathlib import Path

import pytest

from jobs.execution import containment
from jobs.execution.isolation import ChildPool
from jobs.execution.task import Task, attempt_context
from tests.support.procs import alive, wait_for

SOURCE = """
import json, math, os, signal, subprocess, sys, time

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]
ESCAPE = '''
import os, sys, time
if os.fork():
    os._exit(0)
os.setsid()
if os.fork():
    os._exit(0)
open(sys.argv[1], "w").write(str(os.getpid()))
time.sleep(600)
'''


def handler(event, context):
    mode, path = event["mode"], event.get("path")
    if mode == "leak":  # a subprocess left running, then: sleep past the limit, crash, or return
        child = subprocess.Popen(SLEEPER)
        open(path, "w").write(str(child.pid))
        then = event.get("then")
        if then == "sleep":
            time.sleep(600)
        if then == "crash":
            os._exit(3)
        return {"leaked": child.pid}
    if mode == "escape":  # setsid and a double fork: no longer in the attempt's group or session
        subprocess.run([sys.executable, "-c", ESCAPE, path], check=True)
        while not os.path.exists(path) or not open(path).read():
            time.sleep(0.01)
        time.sleep(600)
    if mode == "signals":  # what the attempt's children start with
        status = subprocess.run(["cat", "/proc/self/status"], capture_output=True, text=True).stdout
        ignored = int(next(l for l in status.splitlines() if l.startswith("SigIgn:")).split()[1], 16)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.write(write, b"1" if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL else b"0")
            os._exit(0)
        os.waitpid(pid, 0)
        return {"exec_ignores_term": bool(ignored & (1 << (signal.SIGTERM - 1))),
                "exec_ignores_int": bool(ignored & (1 << (signal.SIGINT - 1))),
                "fork_term_default": os.read(read, 1) == b"1",
                "own_session": os.getsid(0) == os.getpid(), "pgid": os.getpgid(0),
                "self_ignores_term": signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL,)}
    if mode == "memory":  # in this process, or in a subprocess it starts
        size = event["mb"] << 20
        if event.get("in_subprocess"):
            subprocess.run([sys.executable, "-c", f"b = bytearray({size}); import time; time.sleep(600)"])
        held = bytearray(size)
        time.sleep(600)
    if mode == "nap":
        time.sleep(event["s"])
        return {"pid": os.getpid()}
    if mode == "env":
        return {name: os.environ.get(name) for name in event["names"]}
    values = {"set": {1, 2}, "bytes": b"x", "nan": math.nan, "inf": math.inf, "object": object(),
              "big": "x" * event.get("n", 0), "none": None}
    return values[mode]
"""


@pytest.fixture(scope="module")
def pool():
    p = ChildPool(2).start()
    yield p
    p.close()


@pytest.fixture(scope="module")
def fn(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fn") / "f.py"
    path.write_text(textwrap.dedent(SOURCE))
    return path


def task(fn: Path, environment: tuple[tuple[str, str], ...] = (), max_result: int | None = None, **event) -> Task:
    context = attempt_context("f", "r1", 30, namespace="t", max_result=max_result)
    return Task("f", str(fn), event, context, environment)


def pid_in(path: Path) -> int:
    return int(wait_for(lambda: path.exists() and path.read_text(), message=f"{path.name} to be written"))


@pytest.mark.parametrize(
    ("then", "kind", "limit"), [("sleep", "timeout", 1.0), ("crash", "crash", 30.0), (None, "ok", 30.0)]
)
def test_a_leaked_subprocess_dies_with_its_attempt(pool, fn, tmp_path, then, kind, limit):
    path = tmp_path / "leaked"
    result = pool.run(task(fn, mode="leak", path=str(path), then=then), limit)
    assert result.kind == kind, result.error
    leaked = pid_in(path)
    wait_for(lambda: not alive(leaked), timeout=10, message="the leaked subprocess to die")
    assert pool.run(task(fn, mode="nap", s=0), 5).ok  # the pool carries on


def test_a_leaked_subprocess_dies_when_the_run_is_cancelled(pool, fn, tmp_path):
    path = tmp_path / "leaked"
    result = pool.run(task(fn, mode="leak", path=str(path), then="sleep"), 30, cancelled=path.exists)
    assert result.kind == "cancelled"
    leaked = pid_in(path)
    wait_for(lambda: not alive(leaked), timeout=10, message="the leaked subprocess to die")


def test_a_process_that_escapes_the_session_with_a_double_fork_dies_too(pool, fn, tmp_path):
    path = tmp_path / "escaped"
    result = pool.run(task(fn, mode="escape", path=str(path)), 2)
    assert result.kind == "timeout"
    escaped = pid_in(path)
    wait_for(lambda: not alive(escaped), timeout=10, message="the escaped process to die")


def test_an_attempt_has_its_own_session_and_its_children_start_with_default_signals(pool, fn):
    result = pool.run(task(fn, mode="signals"), 10)
    assert result.ok, result.error
    seen = result.value
    assert seen["own_session"] and seen["pgid"] != os.getpgid(0)
    assert seen["self_ignores_term"]  # the attempt itself leaves SIGTERM to the worker (graceful stop) ...
    assert not seen["exec_ignores_term"] and not seen["exec_ignores_int"]  # ... what it runs does not
    assert seen["fork_term_default"]


def test_an_attempt_over_its_memory_limit_is_killed_and_the_others_carry_on(pool, fn):
    other: dict[str, object] = {}

    def neighbour() -> None:
        other["result"] = pool.run(task(fn, mode="nap", s=1.5), 30)

    thread = threading.Thread(target=neighbour)
    thread.start()
    started = time.monotonic()
    result = pool.run(task(fn, mode="memory", mb=400), 30, memory_limit=150 << 20)
    thread.join()
    assert time.monotonic() - started < 10
    assert result.kind == "crash" and result.error["type"] == "MemoryLimitExceeded"
    assert "memory_limit of 150 MB" in result.error["message"]
    assert result.error["limit_bytes"] == 150 << 20 and result.error["peak_bytes"] > 150 << 20
    assert f"used {result.error['peak_bytes'] / (1 << 20):.3g} MB" in result.error["message"]
    assert other["result"].ok  # type: ignore[attr-defined]
    assert pool.run(task(fn, mode="nap", s=0), 5).ok


def test_memory_of_the_attempts_subprocesses_counts(pool, fn):
    result = pool.run(task(fn, mode="memory", mb=300, in_subprocess=True), 30, memory_limit=150 << 20)
    assert result.kind == "crash" and result.error["type"] == "MemoryLimitExceeded"


def test_under_its_memory_limit_an_attempt_runs_to_the_end(pool, fn):
    assert pool.run(task(fn, mode="nap", s=0.5), 30, memory_limit=1 << 30).ok


@pytest.mark.parametrize(("mode", "why"), [("set", "set"), ("bytes", "bytes"), ("nan", "NaN"), ("inf", "NaN"),
                                           ("object", "object")])  # fmt: skip
def test_a_result_that_is_not_json_fails_at_once(pool, fn, mode, why):
    result = pool.run(task(fn, mode=mode, max_result=1000), 10)
    assert result.kind == "error" and result.error["type"] == "InvalidResult"
    assert result.error["retry"] is False and "not JSON" in result.error["message"] and why in result.error["message"]


def test_a_result_over_max_result_fails_at_once_and_says_both_sizes(pool, fn):
    result = pool.run(task(fn, mode="big", n=3000, max_result=2048), 10)
    assert result.kind == "error" and result.error["type"] == "ResultTooLarge" and result.error["retry"] is False
    assert "2.93 KB of JSON, over its max_result of 2 KB" in result.error["message"]
    assert pool.run(task(fn, mode="big", n=2000, max_result=2048), 10).value == "x" * 2000
    just_over = pool.run(task(fn, mode="big", n=2047, max_result=2048), 10)  # both would read "2 KB": bytes say it
    assert "2,049 bytes of JSON, over its max_result of 2 KB (2,048 bytes)" in just_over.error["message"]


def test_the_environment_table_is_set_for_its_attempt_only(pool, fn):
    names = ["GREETING", "HOME"]
    with_table = pool.run(task(fn, (("GREETING", "hello"), ("HOME", "/elsewhere")), mode="env", names=names), 10)
    assert with_table.value == {"GREETING": "hello", "HOME": "/elsewhere"}
    assert pool.run(task(fn, mode="env", names=names), 10).value == {"GREETING": None, "HOME": os.environ.get("HOME")}


def test_cgroup_v2_is_used_only_where_the_worker_has_a_cgroup_of_its_own(tmp_path):
    """The probe's decisions and writes, on a directory laid out like cgroupfs (this host runs cgroup v1)."""
    root, proc = tmp_path / "cgroup", tmp_path / "proc-cgroup"
    base = root / "system.slice" / "worker.service"
    base.mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpu memory pids\n")
    (base / "cgroup.controllers").write_text("cpu memory pids\n")
    (base / "cgroup.subtree_control").write_text("\n")
    proc.write_text("0::/system.slice/worker.service\n")

    (base / "cgroup.procs").write_text(f"{os.getpid()}\n1\n")
    shared = containment.probe(root=root, proc_cgroup=proc)
    assert shared.name == "watchdog" and "holds other processes too" in shared.describe()

    (base / "cgroup.procs").write_text(f"{os.getpid()}\n")
    chosen = containment.probe(root=root, proc_cgroup=proc)
    assert chosen.name == "cgroup" and "cgroup v2" in chosen.describe()
    assert (base / "backburner-worker" / "cgroup.procs").read_text() == str(os.getpid())
    assert (base / "cgroup.subtree_control").read_text() == "+memory"

    chosen.adopt(4242)
    chosen.prepare(4242, 256 << 20)
    group = base / "backburner-attempt-4242"
    assert (group / "cgroup.procs").read_text() == "4242" and (group / "memory.max").read_text() == str(256 << 20)
    assert (group / "memory.oom.group").read_text() == "1"
    assert chosen.oom_peak(4242) is None
    (group / "memory.events").write_text("low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n")
    (group / "memory.peak").write_text(str(300 << 20))
    assert chosen.oom_peak(4242) == 300 << 20

    proc.write_text("12:memory:/x\n0::/\n")  # a hybrid host (cgroup v1 controllers): watchdog
    assert "does not run cgroup v2 alone" in containment.probe(root=root, proc_cgroup=proc).describe()
    assert containment.probe("watchdog", root=root, proc_cgroup=proc).name == "watchdog"
    with pytest.raises(RuntimeError, match="cgroup v2 cannot be used"):
        containment.probe("cgroup", root=root, proc_cgroup=proc)


def test_on_this_host_the_watchdog_says_why(tmp_path):
    chosen = containment.probe()
    assert chosen.name in ("watchdog", "cgroup")
    if chosen.name == "watchdog":
        assert "no cgroup v2" in chosen.describe() and "subreaper" in chosen.describe()


def test_a_killed_worker_takes_everything_its_attempts_started_down(fn, tmp_path):
    """The fork server outlives a SIGKILLed worker just long enough to kill every process below it."""
    import subprocess
    import sys

    path = tmp_path / "leaked"
    script = f"""
import sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
from tests.jobs.test_containment import task
from jobs.execution.isolation import ChildPool
from pathlib import Path
pool = ChildPool(1).start()
pool.run(task(Path({str(fn)!r}), mode="leak", path={str(path)!r}, then="sleep"), 600)
"""
    worker = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        leaked = pid_in(path)
        assert alive(leaked)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        wait_for(lambda: not alive(leaked), timeout=10, message="the attempt's subprocess to die with the worker")
    finally:
        if worker.poll() is None:
            worker.kill()
