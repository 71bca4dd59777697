"""The Lua scripts behind ``jobs.store`` and the other atomic steps, read once per process from ``.lua`` files.

Every change of a run record is one of these scripts, so it is atomic with the writes that go with it (its
message, indexes, concurrency slots). The sources live in ``jobs/lua/`` (shipped as package data); each file
opens with a comment naming its KEYS and ARGV. Like Dramatiq's RedisBroker with its ``dispatch.lua``, a
process reads each file once and registers it with ``redis.Redis.register_script``.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files


@cache
def lua(name: str, package: str = "jobs") -> str:
    """The source of ``<package>/lua/<name>.lua``, read once per process."""
    return (files(package) / "lua" / f"{name}.lua").read_text(encoding="utf-8")


#: Creates a run: record, event, indexes and Dramatiq message, in one round trip (``create_run.lua``).
CREATE_SCRIPT = lua("create_run")
#: Changes a run: compare-and-set of its record with the caller's writes (``compare_and_set.lua``).
CAS_SCRIPT = lua("compare_and_set")
#: Changes many runs in one call, each as CAS_SCRIPT does (``compare_and_set_many.lua``, which calls it as a function).
CAS_MANY_SCRIPT = f"local function compare_and_set(KEYS, ARGV)\n{CAS_SCRIPT}\nend\n{lua('compare_and_set_many')}"
#: Queues the delayed messages whose time has come (``promote_later.lua``).
PROMOTE_LATER_SCRIPT = lua("promote_later")
#: Claims due webhook deliveries (``outbox_claim.lua``).
OUTBOX_CLAIM_SCRIPT = lua("outbox_claim")
#: Reads a run's new log lines and state (``log_read.lua``).
LOG_READ_SCRIPT = lua("log_read")
