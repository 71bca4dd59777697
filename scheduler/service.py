"""The scheduler process: check the schedules, drive them until SIGTERM/SIGINT, hand the lease over."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Any

from jobs.errors import ConfigError, StoreUnavailable
from jobs.runtime import Runtime
from jobs.schedules.registry import Schedules
from jobs.settings import Settings
from jobs.wiring import open_runtime
from jobs.writes import Fence

from .driver import Driver
from .engine import Engine
from .leader import Lease
from .schedules import Schedule, load_schedules
from .watch import ScheduleWatcher

log = logging.getLogger("backburner.scheduler")


def build(runtime: Runtime, settings: Settings) -> tuple[list[Schedule], Driver]:
    """Compile the schedules (raises on an invalid one) and wire engine, lease, watcher and driver."""
    registry = Schedules(runtime.client, runtime.store.keys, lambda: runtime.site)
    try:
        api = registry.from_api()
    except StoreUnavailable as error:  # the watcher adds them once Redis answers
        log.warning("schedules created through the API are not known yet: %s", error.message)
        api = []
    schedules = load_schedules(runtime.site, settings.test_schedules, api)
    lease = Lease(runtime.client, runtime.store.keys.scheduler_lease, settings.scheduler_lease_ttl)
    engine = Engine(runtime, schedules, is_leader=lease.held, fence=Fence(lease.key, lease.holder))
    watcher = ScheduleWatcher(runtime.sites, schedules, registry=registry, test_schedules=settings.test_schedules)
    return schedules, Driver(engine, lease, watcher)


def run_scheduler(settings: Settings) -> None:
    """Run one scheduler replica; any number may run, only the lease holder fires."""
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # it logs every wake-up at INFO
    runtime = open_runtime(settings)
    try:
        schedules, driver = build(runtime, settings)
    except ConfigError as error:
        runtime.close()
        print(f"error: the scheduler cannot start: {error.message}", file=sys.stderr)
        raise SystemExit(1) from None
    if settings.test_schedules:
        log.warning("BACKBURNER_TEST_SCHEDULES is set (a test/benchmark switch): %s", settings.test_schedules)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    listing = ", ".join(f"{s.name} ({s.spec.cron}, {s.spec.timezone}, {s.spec.source})" for s in schedules) or "none"
    log.info("scheduler %s starting; schedules: %s", driver.lease.holder, listing)
    driver.start()
    try:
        stop.wait()
    finally:
        log.info("scheduler %s stopping", driver.lease.holder)
        driver.stop()
        runtime.close()
