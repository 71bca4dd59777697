"""Running one attempt: a warm, killable child process per attempt, and what the handler sees inside it.

Worker side:
    isolation.py   ChildPool: children from a fork server, killed at their limit, on cancel or crash
    forkserver.py  preloaded by the fork server only (signal dispositions of the server and its children)
    task.py        Task and AttemptContext: the plain data a child needs for one attempt

Child side (imported in the user's process, so they stay light):
    child.py       load the function's module, call its handler, send the outcome back
    context.py     the handler's ``context``: Lambda's fields, logs, progress, checkpoints
    spawn.py       ``context.spawn``: runs started from inside a run (batch fan-out)
"""
