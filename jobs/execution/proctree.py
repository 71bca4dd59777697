"""The processes an attempt started: found, measured and killed through ``/proc`` (Linux).

An attempt child makes itself a subreaper (``PR_SET_CHILD_SUBREAPER``), so a process its handler started
that double-forks or calls ``setsid`` is re-parented to the child, not to init: everything the attempt
started stays in the child's process tree, where it can be measured (resident memory) and killed. The
fork server is a subreaper too, so what a dying child leaves behind lands there. Elsewhere (macOS) only
the child's process group is known, and these helpers do what they can with it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
LINUX = sys.platform.startswith("linux")
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_libc: ctypes.CDLL | None = None


def prctl(option: int, value: int) -> bool:
    """Call prctl(2); False where there is none or it failed."""
    global _libc
    if not LINUX:
        return False
    try:
        if _libc is None:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return int(_libc.prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def set_subreaper() -> bool:
    """Orphans of this process's descendants become its children (not init's)."""
    return prctl(_PR_SET_CHILD_SUBREAPER, 1)


def die_with_parent(sig: int = signal.SIGKILL) -> bool:
    """The kernel sends ``sig`` to this process when the thread that started it exits."""
    return prctl(_PR_SET_PDEATHSIG, int(sig))


def _children_from_task_files(pid: int) -> list[int] | None:
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    found: list[int] = []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as file:
                found.extend(int(item) for item in file.read().split())
        except FileNotFoundError:
            if not _HAS_CHILDREN_FILES:
                return None
        except OSError:
            continue
    return found


def _children_by_scan() -> dict[int, list[int]]:
    """Every process's children, from each ``/proc/<pid>/stat`` (kernels without the children files)."""
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as file:
                stat = file.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        tree.setdefault(int(fields[1]), []).append(int(entry))
    return tree


_HAS_CHILDREN_FILES = LINUX and os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (empty when it is gone or there is no /proc)."""
    if not LINUX:
        return []
    found = _children_from_task_files(pid) if _HAS_CHILDREN_FILES else None
    if found is None:
        found = _children_by_scan().get(pid, [])
    return found


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, parents before their children."""
    if not LINUX:
        return []
    if not _HAS_CHILDREN_FILES:
        tree = _children_by_scan()
        order, queue = [], list(tree.get(pid, []))
        while queue:
            item = queue.pop(0)
            order.append(item)
            queue.extend(tree.get(item, []))
        return order
    order, queue = [], children(pid)
    while queue:
        item = queue.pop(0)
        if item in order:  # a pid reused while we walked
            continue
        order.append(item)
        queue.extend(children(item))
    return order


def rss(pid: int) -> int:
    """Resident memory of one process in bytes (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as file:
            return int(file.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def tree_rss(pid: int) -> int:
    """Resident memory of ``pid`` and everything below it, in bytes."""
    return sum(rss(item) for item in [pid, *descendants(pid)])


def stopped(pid: int) -> bool:
    """Whether ``pid`` is stopped (``SIGSTOP``); True where there is no /proc to tell."""
    if not LINUX:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            stat = file.read()
    except OSError:
        return False
    at = stat.rfind(b")") + 2  # the state follows the command name, which may hold anything
    return stat[at : at + 1] in (b"T", b"t")


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def stop_tree(pid: int, *, include_root: bool = True) -> list[int]:
    """SIGSTOP everything below ``pid`` (and ``pid`` itself with ``include_root``); return the pids stopped.

    SIGSTOP cannot be caught; the tree is looked at again until nothing new appears, so a process cannot
    fork its way out while it is being stopped.
    """
    found: list[int] = [pid] if include_root else []
    for item in found:
        _signal(item, signal.SIGSTOP)
    for _ in range(20):
        new = [item for item in descendants(pid) if item not in found]
        if not new:
            break
        for item in new:
            _signal(item, signal.SIGSTOP)
        found.extend(new)
    return found


def continue_tree(pids: list[int]) -> None:
    """SIGCONT what ``stop_tree`` stopped, parents first."""
    for item in pids:
        _signal(item, signal.SIGCONT)


def kill_tree(pid: int, *, include_root: bool = True) -> list[int]:
    """SIGKILL everything below ``pid`` (and ``pid`` itself with ``include_root``); return the pids signalled.

    The tree is stopped first (``stop_tree``), so a process cannot fork its way out while it is being killed.
    """
    found = stop_tree(pid, include_root=include_root)
    for item in found:
        _signal(item, signal.SIGKILL)
    if include_root:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # its process group, where there is no /proc
    return found


def reap() -> int:
    """Collect every exited child of this process (no zombies); return how many."""
    reaped = 0
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid == 0:
            return reaped
        reaped += 1
