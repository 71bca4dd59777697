"""Running one attempt: a warm, killable child process per attempt, and what the handler sees inside it.

Worker side:
    isolation.py    ChildPool: children from a fork server, killed (with all they started) at their limit,
                    past their memory_limit, on cancel or crash
    containment.py  how a worker holds attempts: cgroup v2 where delegated, else the RSS watchdog
    proctree.py     an attempt's process tree through /proc: subreaper, descendants, memory, killing
    forkserver.py   preloaded by the fork server only (signals, subreaping, taking everything down with it)
    task.py         Task and AttemptContext: the plain data a child needs for one attempt
    endings.py      EndingNotes: why an attempt killed, crashed or cancelled ended, in its run's log (a RunHook)

Child side (imported in the user's process, so they stay light):
    child.py        load the function's module, call its handler, send the outcome (JSON, max_result) back
    context.py      the handler's ``context``: Lambda's fields, logs, progress, checkpoints
    output.py       the run's output: print, stderr and log lines batched to Redis, rate-capped
    secrets.py      Backburner's own secrets (never in a handler's environment) and redaction
    spawn.py        ``context.spawn``: runs started from inside a run (batch fan-out)
"""
