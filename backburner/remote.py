"""Client commands: they talk to a running Backburner API through ``backburner.client`` (invoke, replay,
cancel, runs, logs, download)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TransferSpeedColumn

from jobs.runs import STATUSES, TRIGGERS
from jobs.site.durations import parse_duration

from .client import Client, Run
from .options import api_errors, client_options, connect, console, json_option, out
from .tables import Column, print_table

#: How the terminal colours each status (the vocabulary itself is jobs.runs.STATUSES).
COLOURS = {"succeeded": "green", "failed": "red", "running": "cyan", "retrying": "yellow", "delayed": "magenta"}
#: The runs table (backburner.tables): ids, function names and statuses are never cut; the rest wraps or goes.
RUN_COLUMNS = (
    Column("id", identity=True),
    Column("function", identity=True),
    Column("trigger", drop=3),
    Column("status", identity=True, style=COLOURS.get),
    Column("attempt", drop=2),
    Column("created (UTC)", drop=1, min_width=10),
    Column("for (UTC)", drop=4, min_width=10),
)


def _moment(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An ISO 8601 instant as given, or a duration ("90m", "2h", "7d") meaning that long ago."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value).isoformat()
    except ValueError:
        pass
    try:
        ago = parse_duration(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is neither an ISO 8601 time (2026-11-28T09:00:00Z) nor a duration (90m, 2h, 7d)."
        ) from None
    try:
        return (datetime.now(UTC) - timedelta(seconds=ago)).isoformat()
    except OverflowError:
        raise click.BadParameter(f"{value!r} ago is before the year 1.") from None


def _data(data: str | None) -> str | None:
    """``--data``: JSON text, or ``@file.json``; checked here so a typo never reaches the API."""
    if data and data.startswith("@"):
        data = _read(data[1:])
    if data:
        try:
            json.loads(data)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--data") from None
    return data


def _read(name: str) -> str:
    """The text of ``--data @file``; a usage error naming the file and why when it cannot be read."""
    try:
        return Path(name).read_text(encoding="utf-8")
    except OSError as exc:
        raise click.BadParameter(f"cannot read {name}: {exc.strerror or exc}", param_hint="--data") from None
    except UnicodeDecodeError as exc:
        raise click.BadParameter(f"cannot read {name}: not UTF-8 text ({exc.reason})", param_hint="--data") from None


def _wait_and_exit(client: Client, run_id: str) -> None:
    """Show the run live until it ends, print it as JSON, and exit 0 only if it succeeded."""
    with _watching(run_id):
        from .live import wait

        run = wait(client, run_id, console)
    out.print_json(json.dumps(run.data))
    if not run.succeeded:
        console.print(why(run), markup=False, highlight=False, emoji=False)
    sys.exit(0 if run.succeeded else 1)


@contextlib.contextmanager
def _watching(run_id: str) -> Iterator[None]:
    """Ctrl-C stops the watching, not the run: say so in one line, with how to follow it again, and exit 130
    (as shells do for SIGINT) instead of click's "Aborted!" and 1."""
    try:
        yield
    except KeyboardInterrupt:
        console.print(
            f"Stopped watching; run {run_id} goes on. Follow it with: backburner logs {run_id} --follow",
            markup=False,
            highlight=False,
            emoji=False,
        )
        sys.exit(130)


def why(run: Run) -> str:
    """One line for stderr on how a run ended badly: the JSON on stdout says it too, but for scripts."""
    said = ""
    if run.error and run.status != "cancelled":  # a cancelled run's error only says "the run was cancelled"
        lines = run.error.message.splitlines() or [""]
        said = f": {run.error.type}: {lines[0]}{' …' if len(lines) > 1 else ''}"
    where = f"; the traceback is in the JSON on stdout and at GET /api/runs/{run.id}"
    hint = where if run.error and run.error.traceback else ""
    return f"{run.status}{said} (attempt {run.attempt} of {run.max_attempts}{hint})"


@click.command()
@click.argument("name")
@click.option("--data", default=None, help="JSON payload, or @file.json.")
@click.option("--wait", is_flag=True, help="Wait for a background run to finish; exit 1 if it failed.")
@click.option("--delay", default=None, help="Start it this much later (90s, 15m, 2h); through the management API.")
@click.option("--at", "run_at", default=None, help="Start it at this ISO 8601 time; through the management API.")
@client_options
@api_errors
def invoke(name: str, data: str | None, wait: bool, delay: str | None, run_at: str | None, url: str | None) -> None:
    """Invoke a function through its Netlify URL (or, with --delay/--at, as a delayed run).

    \b
    Examples:
      backburner invoke hello
      backburner invoke slow-background --data '{"n": 3}' --wait
      backburner invoke daily-report-background --data '{"day": "2026-03-01"}' --delay 10m
    """
    if delay is not None and run_at is not None:
        raise click.UsageError("give --delay or --at, not both")
    data = _data(data)
    client = connect(url)
    if delay is not None or run_at is not None:
        run = client.trigger(name, json.loads(data) if data else None, delay=delay, run_at=run_at)
        console.print(f"accepted: run [bold]{run.id}[/], {run.status} until {run.data.get('run_at')}")
        if wait:
            _wait_and_exit(client, run.id)
        out.print(run.id)
        return
    response = client.invoke(name, data or "{}", headers={"content-type": "application/json"})
    if response.status_code != 202:
        out.print(response.text, markup=False, highlight=False, emoji=False)
        sys.exit(0 if response.status_code < 400 else 1)
    run_id = response.headers["x-nf-request-id"]
    console.print(f"accepted: run [bold]{run_id}[/]")
    if wait:
        _wait_and_exit(client, run_id)
    out.print(run_id)


@click.command()
@click.argument("run_id", required=False)
@click.option("--data", default=None, help="A new JSON payload (or @file.json); default: the original one.")
@click.option("--wait", is_flag=True, help="Wait for the new run to finish; exit 1 if it failed.")
@click.option("--failed", is_flag=True, help="Replay every failed run that matches the filters (not RUN_ID).")
@click.option("--function", "function", default=None, help="With --failed: only this function's runs.")
@click.option("--since", default=None, callback=_moment, help="With --failed: created at or after (ISO 8601, or 2h).")
@click.option("--until", default=None, callback=_moment, help="With --failed: created before (ISO 8601, or 2h).")
@click.option("--limit", default=None, type=click.IntRange(1, 1000), help="With --failed: at most this many (100).")
@json_option
@client_options
@api_errors
def replay(
    run_id: str | None,
    data: str | None,
    wait: bool,
    failed: bool,
    function: str | None,
    since: str | None,
    until: str | None,
    limit: int | None,
    as_json: bool,
    url: str | None,
) -> None:
    """Run RUN_ID's function again (same payload, or a new one), or with --failed every failed run that matches.

    Each failed run is replayed once: a run that was replayed before is left out.

    \b
    Examples:
      backburner replay 01JD3Z5W6X7Y8Z9A0B1C2D3E4F
      backburner replay 01JD3Z5W6X7Y8Z9A0B1C2D3E4F --data '{"day": "2026-11-27"}' --wait
      backburner replay --failed --function daily-report-background --since 24h
    """
    client = connect(url)
    if failed:
        if run_id or data or wait:
            raise click.UsageError("--failed replays by filter: give no RUN_ID, --data or --wait with it.")
        replayed = client.replay_failed(function, since, until, limit)
        if as_json:
            out.print_json(json.dumps([{"of": item.of, "run": item.run.data} for item in replayed]))
            return
        for item in replayed:
            out.print(f"{item.run.id}  (replay of {item.of}, {item.run.function})")
        console.print(f"replayed {len(replayed)} failed run{'s' if len(replayed) != 1 else ''}")
        return
    if not run_id:
        raise click.UsageError("Give the RUN_ID to replay, or --failed to replay failed runs by filter.")
    if function or since or until or limit:
        raise click.UsageError("--function, --since, --until and --limit go with --failed.")
    data = _data(data)
    run = client.replay(run_id, json.loads(data)) if data else client.replay(run_id)
    console.print(f"accepted: run [bold]{run.id}[/] (a replay of {run_id})")
    if as_json and not wait:
        out.print_json(json.dumps(run.data))
        return
    if wait:
        _wait_and_exit(client, run.id)
    out.print(run.id)


@click.command()
@click.argument("run_id")
@client_options
@api_errors
def cancel(run_id: str, url: str | None) -> None:
    """Cancel RUN_ID (and the runs it started); a running one stops within about a second."""
    run = connect(url).cancel(run_id)
    out.print(run.status if run.status == "cancelled" else "cancel requested")


@click.command()
@click.option("--function", "function", default=None)
@click.option("--status", default=None, type=click.Choice(STATUSES))
@click.option("--trigger", default=None, type=click.Choice(TRIGGERS))
@click.option("--since", default=None, callback=_moment, help="Created at or after: ISO 8601, or a duration ago (2h).")
@click.option("--until", default=None, callback=_moment, help="Created before: ISO 8601, or a duration ago.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 500))
@json_option
@client_options
@api_errors
def runs(
    function: str | None,
    status: str | None,
    trigger: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    as_json: bool,
    url: str | None,
) -> None:
    """List runs, newest first.

    \b
    Examples:
      backburner runs
      backburner runs --function daily-report-background --status failed --limit 5
      backburner runs --trigger schedule --since 24h
      backburner runs --json | jq -r '.[0].id'
    """
    listing = list(connect(url).runs(function, status, since, until, trigger=trigger, limit=limit))
    if as_json:
        out.print_json(json.dumps([run.data for run in listing]))
        return
    # Ids, function names and statuses are never cut (ids are for copying); the rest wraps or goes.
    # "for" shows a tick's or a delayed run's time.
    timed = any(run.data.get("scheduled_for") or run.data.get("run_at") for run in listing)
    rows = []
    for run in listing:
        cells = [run.id, run.function, run.trigger, run.status, f"{run.attempt}/{run.max_attempts}",
                 _utc(run.data["created_at"])]  # fmt: skip
        if timed:
            cells.append(_utc(run.data.get("scheduled_for") or run.data.get("run_at")))
        rows.append(cells)
    print_table(out, RUN_COLUMNS if timed else RUN_COLUMNS[:-1], rows, notes=console)


def _utc(iso: str | None) -> str:
    return iso[:19].replace("T", " ") if iso else ""


@click.command()
@click.argument("run_id")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the run ends.")
@client_options
@api_errors
def logs(run_id: str, follow: bool, url: str | None) -> None:
    """Print a run's captured log lines (5000 are kept per run); --follow streams new ones until it ends.

    \b
    Examples:
      backburner logs 01J9Z3W6K8E7Q2M4T5V6X7Y8Z9
      backburner logs 01J9Z3W6K8E7Q2M4T5V6X7Y8Z9 --follow
    """
    from .live import print_logs

    with _watching(run_id) if follow else contextlib.nullcontext():
        print_logs(connect(url), run_id, follow, out, console)


@click.command()
@click.argument("run_id")
@click.argument("name")
@click.option(
    "-o",
    "--output",
    type=click.Path(),  # a str: Path() would drop the trailing "/" that says "a folder, make it"
    default=None,
    help="A file, or a folder (one ending in / is made if missing).",
)
@client_options
@api_errors
def download(run_id: str, name: str, output: str | None, url: str | None) -> None:
    """Save one artifact of a run, with a progress bar. RUN_ID may be `latest:FUNCTION` for the newest
    successful run of FUNCTION that has the artifact.

    \b
    Examples:
      backburner download 01J9Z3W6K8E7Q2M4T5V6X7Y8Z9 report.csv
      backburner download 01J9Z3W6K8E7Q2M4T5V6X7Y8Z9 data/raw.parquet -o raw.parquet
      backburner download latest:daily-report-background 2026-03-01/report.html
    """
    latest = run_id.removeprefix("latest:") if run_id.startswith("latest:") else None
    if latest == "" or not run_id or not name:
        raise click.UsageError("Give a RUN_ID (or latest:FUNCTION, with the function's name) and the artifact's NAME.")
    client = connect(url)
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    bar = Progress(*columns, console=console)
    tasks: list[TaskID] = []

    def advance(done: int, total: int | None) -> None:
        if not tasks:  # shown once the file comes, so an error is not drawn under an empty bar
            bar.start()
            tasks.append(bar.add_task(Path(name).name, total=total))
        bar.update(tasks[0], completed=done, total=total)

    try:
        if latest:
            saved = client.latest_artifact(latest, name, output, progress=advance)
        else:
            saved = client.download(run_id, name, output, progress=advance)
    except OSError as exc:  # where it was to be saved: a missing folder, a file where a folder should be
        raise click.ClickException(f"cannot save {name} to {output or '.'}: {exc.strerror or exc}") from None
    finally:
        if tasks:  # never started, it would still print a blank line (rich does when not on a terminal)
            bar.stop()
    console.print(f"saved {saved}", markup=False, highlight=False, emoji=False)
