"""Imported by the fork server only (``ChildPool`` preloads it): it and the attempt children it forks
ignore SIGTERM.

A service manager stopping a worker often signals its whole process group (systemd's default
``KillMode=control-group``, a terminal, ``kill -- -PGID``). The worker answers SIGTERM by letting
running attempts finish; if the fork server died of the same signal, every child would die with it
(they have ``PR_SET_PDEATHSIG``). Their lifetime is the worker's business: it kills them at their
limit or on cancel, retires them through their pipe, and they die with the worker.
"""

import signal

signal.signal(signal.SIGTERM, signal.SIG_IGN)
