"""`backburner schedules`: list every schedule's next fire times, and control one through the API (pause,
resume, trigger, backfill, create, delete)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from .client import ApiError, Client
from .options import (
    api_errors,
    check_or_exit,
    client_options,
    connect,
    console,
    json_option,
    out,
    settings_for,
    site_option,
    url_option,
)
from .tables import Column, print_table

#: The listing (backburner.tables): names, functions and states are never cut; the rest wraps or goes.
COLUMNS = (
    Column("name", identity=True),
    Column("function", identity=True),
    Column("schedule", drop=1),
    Column("timezone", drop=4),
    Column("source", drop=3),
    Column("state", identity=True, style=lambda state: "yellow" if state == "paused" else None),
    Column("next runs (UTC)", drop=2, min_width=20),
)


@click.group(invoke_without_command=True)
@site_option
@click.option("--from", "start", default=None, help="ISO-8601 start (default: now).")
@click.option("--count", default=5, show_default=True, type=click.IntRange(0, 100_000))
@json_option
@url_option
@click.pass_context
def schedules(
    ctx: click.Context, site: Path | None, start: str | None, count: int, as_json: bool, url: str | None
) -> None:
    """List every schedule (netlify.toml's and those created through the API) with its next fire times;
    the subcommands control one.

    netlify.toml's schedules are read from the site; the API's, and pause states, from Redis when
    REDIS_URL is set, else from the API at --url.

    \b
    Examples:
      backburner schedules --from 2026-01-01T00:00:00Z --count 5 --json
      backburner schedules pause nightly-cleanup-background
      backburner schedules backfill daily-report-background --from 2026-02-01 --to 2026-03-01
      backburner schedules create report-eu --function daily-report-background --cron "0 6 * * 1-5" \\
          --payload '{"region": "eu"}'
    """
    if ctx.invoked_subcommand is not None:
        return
    from jobs import clock
    from jobs.site.cron import parse_cron

    settings = settings_for(site)
    loaded = check_or_exit(settings.site)
    try:
        moment = clock.parse_iso(start) if start else datetime.now(UTC)
    except (ValueError, OverflowError) as exc:
        raise click.BadParameter(
            f"{start!r} is not an ISO 8601 time like 2026-01-01T00:00:00Z ({exc})", param_hint="--from"
        ) from None
    specs = [_file(spec) for spec in loaded.schedules]
    remote, paused = _remote(settings, url, loaded)
    taken = {spec["name"] for spec in specs}
    specs += [spec for spec in remote if spec["name"] not in taken]
    listing = []
    for spec in specs:
        cron = parse_cron(spec["schedule"], spec["timezone"])
        try:
            runs = [clock.iso(t).replace(".000Z", "Z") for t in cron.next_runs(moment, count)]
        except OverflowError:  # ticks past the year 9999, which no date can hold
            raise click.BadParameter(f"{start!r} leaves no room for fire times after it", param_hint="--from") from None
        listing.append({**spec, "paused": paused.get(spec["name"], False), "next_runs": runs})
    if as_json:
        keys = ("name", "function", "schedule", "timezone", "paused", "next_runs", "source")
        out.print_json(json.dumps([{key: item[key] for key in keys} for item in listing]))
        return
    rows = []
    for item in listing:
        state = "paused" if item["paused"] else "active"
        rows.append((item["name"], item["function"], item["schedule"], item["timezone"], item["source"], state,
                     "\n".join(item["next_runs"])))  # fmt: skip
    print_table(out, COLUMNS, rows, notes=console)


def _file(spec: Any) -> dict[str, Any]:
    """A ScheduleSpec (or the client's Schedule) as a listing entry."""
    return {"name": spec.name, "function": spec.function, "schedule": spec.cron, "timezone": spec.timezone,
            "source": spec.source}  # fmt: skip


def _remote(settings: Any, url: str | None, site: Any) -> tuple[list[dict[str, Any]], dict[str, bool]]:
    """The API's schedules and every pause flag: from Redis with REDIS_URL, else from the API; or nothing
    (with a warning) when neither answers."""
    if settings.redis_url:
        return _from_redis(settings, site)
    try:
        with Client(url, timeout=2.0) as api:
            listed = api.schedules()
    except (ApiError, ValueError) as exc:  # ValueError: --url or the token cannot work
        said = exc.message if isinstance(exc, ApiError) else f"{exc}."
        console.print(
            f"[yellow]warning[/] {escape(said)} Showing netlify.toml's schedules only, as not paused "
            "(set REDIS_URL, or --url for a running API, to see all)."
        )
        return [], {}
    remote = [{**_file(s), "schedule": s.cron} for s in listed if s.source == "api"]
    return remote, {s.name: s.paused for s in listed}


def _from_redis(settings: Any, site: Any) -> tuple[list[dict[str, Any]], dict[str, bool]]:
    import redis

    from jobs.keys import Keys
    from jobs.schedules.registry import Schedules
    from jobs.schedules.state import ScheduleState

    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=1, socket_timeout=2)
    try:
        keys = Keys(settings.namespace)
        api = Schedules(client, keys, lambda: site).from_api()
        names = [spec.name for spec in site.schedules] + [spec.name for spec in api]
        statuses = ScheduleState(client, keys).load(names)
        return [_file(spec) for spec in api], {name: status.paused for name, status in statuses.items()}
    except Exception as exc:
        console.print(f"[yellow]warning[/] cannot read schedules from Redis ({exc}); showing netlify.toml's only")
        return [], {}
    finally:
        client.close()


def _act(action: str, name: str, url: str | None) -> None:
    client = connect(url)
    if action == "trigger":
        run = client.trigger_schedule(name)
        console.print(f"accepted: run [bold]{run.id}[/] of {escape(name)}")
        out.print(run.id)
        return
    schedule = client.pause_schedule(name) if action == "pause" else client.resume_schedule(name)
    console.print(f"{escape(name)}: {'paused' if schedule.paused else 'active'}")


@schedules.command("pause")
@click.argument("name")
@client_options
@api_errors
def schedules_pause(name: str, url: str | None) -> None:
    """Stop firing schedule NAME (kept in Redis, survives restarts)."""
    _act("pause", name, url)


@schedules.command("resume")
@click.argument("name")
@client_options
@api_errors
def schedules_resume(name: str, url: str | None) -> None:
    """Fire schedule NAME again from now (ticks that fell in the pause do not run)."""
    _act("resume", name, url)


@schedules.command("trigger")
@click.argument("name")
@client_options
@api_errors
def schedules_trigger(name: str, url: str | None) -> None:
    """Run schedule NAME now, as a scheduled run; prints the run id."""
    _act("trigger", name, url)


@schedules.command("backfill")
@click.argument("name")
@click.option("--from", "start", required=True, help="First tick included (ISO 8601; UTC without a zone).")
@click.option("--to", "end", required=True, help="Ticks before this (ISO 8601; UTC without a zone).")
@json_option
@client_options
@api_errors
def schedules_backfill(name: str, start: str, end: str, as_json: bool, url: str | None) -> None:
    """Create one run per tick of schedule NAME in [--from, --to), as each tick would have run
    (trigger "backfill"); ticks that already have a run are skipped. At most 1,000 ticks per call.

    \b
    Examples:
      backburner schedules backfill daily-report-background --from 2026-02-01 --to 2026-03-01
      backburner schedules backfill report-eu --from 2026-02-01T00:00:00Z --to 2026-02-08T00:00:00Z --json
    """
    done = connect(url).backfill(name, start, end)
    if as_json:
        out.print_json(json.dumps(done.data))
        return
    skipped = done.data["skipped"]
    for run in done:
        out.print(f"{run.id}  {run.data['scheduled_for']}")
    console.print(f"created {len(done)} run{'s' if len(done) != 1 else ''}; skipped {len(skipped)} tick"
                  f"{'s' if len(skipped) != 1 else ''} that already had a run")  # fmt: skip
    for tick in skipped:
        console.print(f"  skipped {tick}")


@schedules.command("create")
@click.argument("name")
@click.option("--function", "function", required=True, help="The function to run.")
@click.option("--cron", required=True, help="Netlify's 5-field cron, or @hourly, @daily, ...")
@click.option("--timezone", default="UTC", show_default=True, help="An IANA time zone.")
@click.option("--payload", default=None, help='A JSON object merged into the body, e.g. \'{"region": "eu"}\'.')
@client_options
@api_errors
def schedules_create(name: str, function: str, cron: str, timezone: str, payload: str | None, url: str | None) -> None:
    """Create schedule NAME through the API (kept in Redis; running schedulers pick it up at once)."""
    try:
        body = json.loads(payload) if payload else {}
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--payload") from None
    schedule = connect(url).create_schedule(name, function, cron, timezone=timezone, payload=body)
    first = schedule.next_runs[0].isoformat().replace("+00:00", "Z") if schedule.next_runs else "never"
    console.print(f"created {escape(name)} ({escape(cron)}, {timezone}); first run {first}")


@schedules.command("delete")
@click.argument("name")
@client_options
@api_errors
def schedules_delete(name: str, url: str | None) -> None:
    """Delete schedule NAME (only schedules created through the API; netlify.toml's are edited there)."""
    connect(url).delete_schedule(name)
    console.print(f"deleted {escape(name)}")
