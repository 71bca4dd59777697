"""The runtime core: runs, their store and state machine, the broker, and one subpackage per concept.

The core (what every process shares), flat but for the broker:

    runs.py            the run record and its vocabulary (statuses, triggers, outcomes), Result of an attempt
    store.py           run records in Redis, created with their message and changed by compare-and-set
    writes.py          Writes: the commands a mutation or hook queues to commit with a run's change
    scripts.py         the Lua scripts behind the store, read once from lua/*.lua
    lifecycle.py       how a run moves between states (claim, finish, retry, lose, cancel)
    delayed.py         delayed runs: ?delay= / ?run_at=, and queueing them when they are due
    replays.py         replaying a run, or every failed run of a filter once
    hooks.py           RunHook, the extension point for code that reacts to runs
    broker/            Dramatiq on Redis: the clients, RunBroker (enqueue and ack inside another atomic
                       write); every reliance on Dramatiq's private internals is in broker/dramatiq_internals/
    keys.py            Redis key names (and ``text`` for reading them back)
    settings.py        one typed settings object from the environment
    errors.py          every error Backburner raises on purpose
    clock.py           "now", aware UTC, written one way
    event.py           Netlify's v1 event, from a request or a schedule tick
    retry.py           NonRetriable and RetryAfter, for handlers that steer their retries
    metrics.py         counters in Redis for GET /metrics (a RunHook)
    log_tail.py        reading a run's log from a line on, for live views
    runtime.py         the parts a process opens once: Redis, broker, store, lifecycle, site snapshot
    wiring.py          a process's runtime plus the default hooks (webhooks, metrics)

Subpackages:

    site/        netlify.toml and the functions folder: model, loader, values, cron dialect, snapshot
    schedules/   every schedule (netlify.toml's and the API's), their state, tick runs and backfill
    execution/   running one attempt in a warm, killable child process; what the handler sees there
    artifacts/   the artifact store (local folder, S3), writing a run's files, finding them later
    delivery/    webhooks: the destinations hook, the durable outbox, signed delivery
    worker/      a worker process: consumers, recorder, reaper, retention
    batch/       the batch-transform kit (``jobs.batch.Batch``)
    aggregate/   the API-aggregation kit (``jobs.aggregate``)
    lua/         the Lua sources (each opens with its KEYS and ARGV), shipped as package data

Imports flow from subpackages and ``runtime``/``wiring`` towards the core, never back; code in the
user's child process (``execution.child``, ``execution.context``) stays light.
"""
