"""How a worker holds its attempts: memory limits and killing everything an attempt started.

Two ways, chosen when the worker starts (its start line says which):

- **cgroup v2**, where the host delegates the worker a cgroup of its own: each warm child gets a child
  cgroup with ``memory.max`` set to the function's ``memory_limit`` for each attempt, so the kernel
  stops the attempt (and everything it started, ``memory.oom.group``) at the limit, and ``cgroup.kill``
  takes down whatever the attempt started, however it escaped. Delegated means: the worker's cgroup
  offers the memory controller and holds no other process (systemd ``Delegate=yes`` with one worker per
  unit, or a container of its own with a writable cgroup namespace).
- **the watchdog** everywhere else: the worker samples the resident memory of each attempt's process
  tree every ``WATCH_INTERVAL_S`` and kills the tree past the limit; everything the attempt started is
  found through its subreaping child (``jobs.execution.proctree``).
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from . import proctree

log = logging.getLogger("backburner.worker")

#: How often the watchdog samples a running attempt's memory.
WATCH_INTERVAL_S = 0.1
_LEAF = "backburner-worker"
_ATTEMPT = "backburner-attempt-"


class Watchdog:
    """Resident memory of each attempt's process tree, sampled by the pool; kills through ``/proc``."""

    name = "watchdog"
    enforced = False

    def __init__(self, reason: str | None = None) -> None:
        self.reason = reason

    def describe(self) -> str:
        how = "process tree RSS sampled every 0.1 s" if proctree.LINUX else "process group only (no /proc)"
        why = f" ({self.reason})" if self.reason else ""
        return f"own session + subreaper per attempt; memory_limit by watchdog, {how}{why}"

    def adopt(self, pid: int) -> None:
        """A new warm child."""

    def prepare(self, pid: int, memory_limit: int | None) -> None:
        """Before an attempt in child ``pid``."""

    def usage(self, pid: int) -> int:
        return proctree.tree_rss(pid)

    def oom_peak(self, pid: int) -> int | None:
        """The peak memory if the kernel killed the attempt for exceeding its limit, else None."""
        return None

    def kill(self, pid: int) -> None:
        proctree.kill_tree(pid)

    def release(self, pid: int) -> None:
        """Child ``pid`` is gone."""


def _read(path: Path) -> str:
    return path.read_text().strip()


class CgroupV2(Watchdog):
    """One child cgroup per warm child under the worker's delegated cgroup ``base``."""

    name = "cgroup"
    enforced = True

    def __init__(self, base: Path) -> None:
        super().__init__()
        self.base = base
        self._ooms: dict[int, int] = {}

    def describe(self) -> str:
        return f"cgroup v2 under {self.base}: memory.max per attempt, cgroup.kill for everything it started"

    def _group(self, pid: int) -> Path:
        return self.base / f"{_ATTEMPT}{pid}"

    def adopt(self, pid: int) -> None:
        group = self._group(pid)
        group.mkdir(exist_ok=True)
        with contextlib.suppress(OSError):
            (group / "memory.oom.group").write_text("1")  # an attempt over its limit dies whole
        with contextlib.suppress(OSError):
            (group / "memory.swap.max").write_text("0")  # over the limit means killed, not swapped
        (group / "cgroup.procs").write_text(str(pid))

    def prepare(self, pid: int, memory_limit: int | None) -> None:
        group = self._group(pid)
        with contextlib.suppress(OSError):
            (group / "memory.max").write_text(str(memory_limit) if memory_limit else "max")
        self._ooms[pid] = self._oom_kills(group)

    def _oom_kills(self, group: Path) -> int:
        try:
            for line in _read(group / "memory.events").splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def usage(self, pid: int) -> int:
        try:
            return int(_read(self._group(pid) / "memory.current"))
        except (OSError, ValueError):
            return super().usage(pid)

    def oom_peak(self, pid: int) -> int | None:
        group = self._group(pid)
        if self._oom_kills(group) <= self._ooms.get(pid, 0):
            return None
        for name in ("memory.peak", "memory.max"):
            with contextlib.suppress(OSError, ValueError):
                return int(_read(group / name))
        return 0

    def kill(self, pid: int) -> None:
        group = self._group(pid)
        try:
            (group / "cgroup.kill").write_text("1")
        except OSError:
            with contextlib.suppress(OSError):
                for item in _read(group / "cgroup.procs").split():
                    proctree.kill_tree(int(item))
        proctree.kill_tree(pid)

    def release(self, pid: int) -> None:
        self._ooms.pop(pid, None)
        with contextlib.suppress(OSError):
            self._group(pid).rmdir()  # only empty cgroups go; a later release tries the leftovers again
        for stale in self.base.glob(f"{_ATTEMPT}*"):
            with contextlib.suppress(OSError, ValueError):
                if not _alive(int(stale.name.removeprefix(_ATTEMPT))):
                    (stale / "cgroup.kill").write_text("1")
                    stale.rmdir()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _own_cgroup(proc_cgroup: Path) -> str | None:
    """This process's cgroup v2 path, when the host runs cgroup v2 only (no v1 hierarchies)."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    if len(lines) != 1 or not lines[0].startswith("0::"):
        return None
    return lines[0][3:]


def probe(
    mode: str = "auto", *, root: Path = Path("/sys/fs/cgroup"), proc_cgroup: Path = Path("/proc/self/cgroup")
) -> Watchdog:
    """The best containment this host allows the worker (``mode``: auto, cgroup or watchdog).

    Using cgroup v2 moves the worker into a leaf cgroup of its own (``backburner-worker``) and enables the
    memory controller for its attempts' cgroups beside it, as a delegated service must.
    """
    if mode == "watchdog":
        return Watchdog("BACKBURNER_CONTAINMENT=watchdog")
    reason = _delegate(root, proc_cgroup)
    if isinstance(reason, Path):
        return CgroupV2(reason)
    if mode == "cgroup":
        raise RuntimeError(f"BACKBURNER_CONTAINMENT=cgroup, but cgroup v2 cannot be used: {reason}")
    return Watchdog(f"no cgroup v2: {reason}")


def _delegate(root: Path, proc_cgroup: Path) -> Path | str:
    """The worker's delegated cgroup, set up for attempt cgroups; or why there is none."""
    if not proctree.LINUX:
        return "not Linux"
    own = _own_cgroup(proc_cgroup)
    if own is None or not (root / "cgroup.controllers").is_file():
        return "the host does not run cgroup v2 alone"
    base = root / own.lstrip("/")
    try:
        if "memory" not in _read(base / "cgroup.controllers").split():
            return f"the memory controller is not delegated to {base}"
        others = [pid for pid in _read(base / "cgroup.procs").split() if int(pid) != os.getpid()]
        if others:
            return f"{base} holds other processes too ({len(others)}); give the worker a cgroup of its own"
        leaf = base / _LEAF
        leaf.mkdir(exist_ok=True)
        (leaf / "cgroup.procs").write_text(str(os.getpid()))  # a cgroup with controllers for its children holds none
        if "memory" not in _read(base / "cgroup.subtree_control").split():
            (base / "cgroup.subtree_control").write_text("+memory")
    except (OSError, ValueError) as exc:
        return f"{base} is not writable by the worker ({exc.strerror if isinstance(exc, OSError) else exc})"
    for stale in base.glob(f"{_ATTEMPT}*"):  # left by a worker that was killed: take them down
        with contextlib.suppress(OSError):
            (stale / "cgroup.kill").write_text("1")
            stale.rmdir()
    return base
