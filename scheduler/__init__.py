"""The scheduler: cron ticks of the site's schedules become runs, exactly once across any number of replicas.

service   process main: signals, start-up checks, lifetime
driver    APScheduler 3 drives time: one job wakes at the next tick, one keeps the lease
leader    the Redis lease that picks the one scheduler allowed to fire
engine    what a wake-up does at ``now``: catch-up, overlap, firing (tests drive it directly)
catchup   which due ticks fire, as a pure function of the schedule, its state and ``now``
schedules the site's schedules, compiled (an invalid one refuses start-up)
lua/      the lease's Lua scripts (renew, release)
"""
