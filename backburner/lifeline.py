"""The processes a supervisor starts die with it, whatever kills it (even ``kill -9``).

Each child is given the supervisor's pid and the read end of a pipe. On Linux it asks the kernel for
SIGKILL when the supervisor exits (``PR_SET_PDEATHSIG``), after checking that the supervisor is still
its parent (it may have died before the request was made). Everywhere, a thread watches the pipe: the
kernel closes the supervisor's end when the supervisor dies, and the child then kills itself.

Python services call ``hold()`` as they start (the CLI does); other programs (``redis-server``) are
started through ``python -m backburner.lifeline SUPERVISOR_PID PROGRAM ARGS...``, which holds on and then
execs them (the death signal survives ``exec``; the pipe does not, so this covers Linux only).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import MutableMapping

from jobs.execution.proctree import LINUX, die_with_parent

PID_VARIABLE = "BACKBURNER_LIFELINE_PID"
FD_VARIABLE = "BACKBURNER_LIFELINE_FD"


class Lifeline:
    """The supervisor's side: a pipe whose write end only it holds, and what a child needs to know."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        os.set_inheritable(self.write_fd, False)

    @property
    def env(self) -> dict[str, str]:
        return {PID_VARIABLE: str(os.getpid()), FD_VARIABLE: str(self.read_fd)}

    @property
    def pass_fds(self) -> tuple[int, ...]:
        return (self.read_fd,)

    def command(self, args: list[str]) -> list[str]:
        """``args`` started through the lifeline (for programs that cannot call ``hold``)."""
        return [sys.executable, "-m", "backburner.lifeline", str(os.getpid()), *args]


def _watch(fd: int) -> None:
    try:
        while os.read(fd, 1):
            pass
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGKILL)  # the supervisor is gone: so are we


def hold(environ: MutableMapping[str, str] | None = None, *, watch: bool = True) -> bool:
    """In a supervised child: die with the supervisor. False when not started by one."""
    env = os.environ if environ is None else environ
    parent, fd = env.pop(PID_VARIABLE, None), env.pop(FD_VARIABLE, None)  # not for our own children
    if not parent:
        return False
    if LINUX:
        die_with_parent(signal.SIGKILL)
    if os.getppid() != int(parent):  # the supervisor died before we could ask: follow it now
        os._exit(1)
    if fd and fd.isdigit():
        if watch:
            threading.Thread(target=_watch, args=(int(fd),), name="backburner-lifeline", daemon=True).start()
        else:
            os.close(int(fd))
    return True


def main(argv: list[str]) -> None:
    """``python -m backburner.lifeline SUPERVISOR_PID PROGRAM [ARGS...]``: die with the supervisor, run PROGRAM."""
    if len(argv) < 2 or not argv[0].isdigit():
        raise SystemExit("usage: python -m backburner.lifeline SUPERVISOR_PID PROGRAM [ARGS...]")
    hold({PID_VARIABLE: argv[0]}, watch=False)  # a watching thread would not survive exec
    os.execvp(argv[1], argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
