"""Imported by the fork server only (``ChildPool`` preloads it): it ignores SIGTERM, adopts what dying
children leave behind, and takes every process below it down when it goes.

A service manager stopping a worker often signals its whole process group (systemd's default
``KillMode=control-group``, a terminal, ``kill -- -PGID``). The worker answers SIGTERM by letting
running attempts finish; if the fork server died of the same signal, every child would die with it
(they have ``PR_SET_PDEATHSIG``). Their lifetime is the worker's business: it kills them at their
limit or on cancel, retires them through their pipe, and they die with the worker. Attempt children
ignore SIGTERM with a handler of their own (``jobs.execution.child``), which the programs they start do
not inherit.

The fork server is a subreaper: a process whose attempt child died first (killed at its limit, crashed)
is re-parented here, not to init, and the worker kills such strays (``ChildPool``). When the worker dies,
even by SIGKILL, the fork server exits (its "alive" pipe closes) and kills everything below it on the
way out, so no process of any attempt outlives the worker.
"""

import atexit
import os
import signal
import warnings

from jobs.execution import proctree
from jobs.execution.secrets import scrub_environ

_SERVER = os.getpid()


def _take_everything_down() -> None:
    if os.getpid() == _SERVER:  # forked children inherit this hook; only the server acts on it
        proctree.kill_tree(_SERVER, include_root=False)


signal.signal(signal.SIGTERM, signal.SIG_IGN)
# Adopted strays are reaped by the server's own loop, which warns about each pid it did not fork.
warnings.filterwarnings("ignore", message="forkserver: waitpid returned unexpected pid")
scrub_environ()
proctree.set_subreaper()
atexit.register(_take_everything_down)
