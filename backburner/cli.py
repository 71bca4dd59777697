"""The `backburner` command: run the services, talk to the API, and inspect a site."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from .options import check_or_exit as _check_or_exit
from .options import console, json_option, out, site_option
from .options import settings_for as _settings
from .remote import cancel, download, invoke, logs, replay, runs
from .schedules import schedules
from .startup import Commands
from .tables import Column, print_table
from .webhooks import webhooks

FUNCTION_COLUMNS = (
    Column("name", identity=True),
    Column("kind", identity=True),
    Column("schedule", drop=1),
    Column("time limit", drop=2),
    Column("retries", drop=3),
)


def _logging(level: str = "INFO") -> None:
    """Text, or JSON lines with BACKBURNER_LOG_FORMAT=json; secrets are redacted either way (``backburner.logs``)."""
    from .logs import configure

    context = click.get_current_context(silent=True)
    configure(level, service=context.info_name if context else None)


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Backburner: Netlify-style background and scheduled functions for any Python host.

    \b
    Examples:
      backburner dev                                   # API + worker + scheduler, embedded Redis
      backburner invoke slow-background --data '{"n": 3}' --wait
      backburner runs --function slow-background
      backburner check --site ./my-site
    """
    from .lifeline import hold

    hold()  # started by `dev` (or `worker --processes N`): die with it, whatever kills it


# -- services ------------------------------------------------------------------------------------


def _dashboard_options(command: Any) -> Any:
    command = click.option(
        "--dashboard-port",
        type=click.IntRange(1, 65535),
        default=None,
        help="Serve the dashboard on this port, its own origin, away from the functions' pages "
        "(default: BACKBURNER_DASHBOARD_PORT; unset: on --port with everything else).",
    )(command)
    return click.option(
        "--dashboard-host", default=None, help="Address of the dashboard's listener (default: --host)."
    )(command)


@main.command()
@site_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8888, show_default=True, type=click.IntRange(0, 65535))
@_dashboard_options
@click.option("--threads", default=4, show_default=True, type=click.IntRange(min=1), help="Worker threads.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Redis's data, artifacts and the webhook secret (default: BACKBURNER_DATA_DIR or .backburner in the site).",
)
def dev(
    site: Path | None,
    host: str,
    port: int,
    dashboard_port: int | None,
    dashboard_host: str | None,
    threads: int,
    data_dir: Path | None,
) -> None:
    """Run the API, a worker and the scheduler on one machine, with an embedded Redis.

    Data (Redis's append-only file, artifacts, the webhook secret) goes to .backburner/ in the site, or
    --data-dir. Set REDIS_URL to use an existing Redis instead. The dashboard is at
    http://127.0.0.1:8888/ (no login in dev). Webhooks are signed with a secret made on the first start
    (`backburner webhooks secret` prints it) and may go to receivers on this machine.
    dev listens on loopback only: another --host needs BACKBURNER_API_TOKEN (16+ characters).

    \b
    Examples:
      backburner dev
      backburner dev --site ./my-site --port 9000 --data-dir /tmp/bb-data
      REDIS_URL=redis://localhost:6379/0 backburner dev
    """
    from api.app import check_token
    from api.listeners import Listen

    from .dev import run

    started = time.monotonic()
    _logging()
    settings = _settings(site, dev=True, data_dir=data_dir)
    dashboard_port = dashboard_port or settings.dashboard_port
    dashboard_host = dashboard_host or settings.dashboard_host
    check_token(settings, Listen(host, port, dashboard_host or host if dashboard_port else None, dashboard_port))
    dashboard = (dashboard_host or host, dashboard_port) if dashboard_port else None
    loaded = _check_or_exit(settings.site)
    run(settings, loaded, host=host, port=port, threads=threads, started=started, dashboard=dashboard)


@main.command()
@site_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8888, show_default=True, type=click.IntRange(0, 65535))
@_dashboard_options
def api(site: Path | None, host: str, port: int, dashboard_port: int | None, dashboard_host: str | None) -> None:
    """Serve the HTTP API: Netlify invocation URLs, management API, dashboard (/) and /metrics.

    Outside dev it needs BACKBURNER_API_TOKEN, 16 characters or more (the dashboard's login asks for
    it); set BACKBURNER_METRICS_PUBLIC=1 to let Prometheus scrape /metrics without it, and
    BACKBURNER_LOG_FORMAT=json for JSON log lines. With --dashboard-port the dashboard gets its own
    listener (its own origin), so no function's page shares an origin with a logged-in dashboard.

    \b
    Examples:
      BACKBURNER_API_TOKEN=... REDIS_URL=redis://redis:6379/0 backburner api --host 0.0.0.0
      backburner api --host 0.0.0.0 --dashboard-host 127.0.0.1 --dashboard-port 8889
      BACKBURNER_LOG_FORMAT=json backburner api --port 8080
    """
    from .serve import serve_api

    _logging()
    settings = _settings(site)
    _check_or_exit(settings.site)
    _require_redis(settings)
    serve_api(
        settings, host, port, dashboard_host or settings.dashboard_host, dashboard_port or settings.dashboard_port
    )


@main.command()
@site_option
@click.option("--processes", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(min=1))
def worker(site: Path | None, processes: int, threads: int) -> None:
    """Run worker processes that execute background and scheduled runs.

    \b
    Examples:
      REDIS_URL=redis://redis:6379/0 backburner worker
      backburner worker --processes 4 --threads 8
    """
    from jobs.delivery.destinations import check_secret

    _logging()
    settings = _settings(site)
    # Once, here: not once per worker process (and again on every restart), which a supervisor would do in vain.
    check_secret(settings, _check_or_exit(settings.site))
    _require_redis(settings)
    if processes > 1:
        from .supervisor import Supervisor

        supervisor = Supervisor({"BACKBURNER_SITE": str(settings.site)})
        for n in range(processes):
            supervisor.add(f"worker-{n}", "worker", "--processes", "1", "--threads", str(threads))
        sys.exit(supervisor.run())
    from jobs.worker import run_worker

    run_worker(settings, threads=threads)


@main.command()
@site_option
def scheduler(site: Path | None) -> None:
    """Fire the cron schedules declared in netlify.toml (run several: one leads, the others stand by).

    \b
    Examples:
      REDIS_URL=redis://redis:6379/0 backburner scheduler --site ./my-site
    """
    _logging()
    settings = _settings(site)
    _check_or_exit(settings.site)
    _require_redis(settings)
    try:
        from scheduler.service import run_scheduler
    except ImportError:  # the scheduler arrives with its own issue; keep `dev` whole meanwhile
        console.print("[yellow]scheduler: not available in this build; schedules will not fire[/]")
        while True:
            time.sleep(3600)
    run_scheduler(settings)


# -- site inspection -------------------------------------------------------------------------------


def _require_redis(settings: Any) -> None:
    from jobs.errors import ConfigError

    if not settings.redis_url:
        raise ConfigError(
            "REDIS_URL is not set: point it at your Redis (export REDIS_URL=redis://host:6379/0), "
            "or run everything with `backburner dev`."
        )


@main.command()
@site_option
def check(site: Path | None) -> None:
    """Validate netlify.toml and the functions (exit non-zero with precise messages); list the routes.

    \b
    Examples:
      backburner check
      backburner check --site ./my-site && echo deployable
    """
    from .routing import print_routes

    settings = _settings(site)
    loaded = _check_or_exit(settings.site)
    count = len(loaded.functions)
    console.print(f"[green]ok[/] {count} function{'s' if count != 1 else ''} in {loaded.functions_dir}")
    print_routes(loaded)


@main.command()
@site_option
@json_option
def functions(site: Path | None, as_json: bool) -> None:
    """List the site's functions with their kind, limits, retries and schedule (--json: every setting).

    \b
    Examples:
      backburner functions
      backburner functions --json | jq '.[] | select(.schedule != null) | .name'
    """
    from api.functions import describe

    settings = _settings(site)
    loaded = _check_or_exit(settings.site)
    listing = [describe(function, artifacts=settings.artifacts_url) for function in loaded.functions.values()]
    if as_json:
        out.print_json(json.dumps(listing))
        return
    rows = []
    for item in listing:
        retries = ", ".join(f"{d:g}s" for d in item["retry_delays_s"]) or "none"
        rows.append((item["name"], item["kind"], item["schedule"] or "", f"{item['time_limit_s']:g}s", retries))
    print_table(out, FUNCTION_COLUMNS, rows, notes=console)


# -- client commands (backburner/remote.py, backburner/schedules.py) -----------------------------------

for _command in (invoke, runs, logs, download, replay, cancel, schedules, webhooks):
    main.add_command(_command)
