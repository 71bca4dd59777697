"""Schedules: which exist (netlify.toml's and the API's), their state in Redis, and the runs their ticks make.

    registry.py   every schedule, whatever its source; creating and deleting the API's (kept in Redis)
    state.py      per-schedule state shared by scheduler and API: pause, handled ticks, overlap, skips
    ticks.py      a tick's run (deduplicated across schedulers, indexed for good), "run now"
    backfill.py   one run per past tick in a range, as each tick would have run

The scheduler (``scheduler/``) decides when a tick fires; the records of a schedule are
``jobs.site.model.ScheduleSpec``, and ``[[backburner.schedules]]`` is read by ``jobs.site.schedules``.
"""
