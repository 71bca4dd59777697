"""Client commands: they talk to a running Backburner API (invoke, runs, logs, download)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Column, Table

from jobs.runs import STATUSES, TRIGGERS
from jobs.site.durations import parse_duration

from .client import Client
from .options import console, json_option, out, url_option


@click.command()
@click.argument("name")
@click.option("--data", default=None, help="JSON payload, or @file.json.")
@click.option("--wait", is_flag=True, help="Wait for a background run to finish; exit 1 if it failed.")
@url_option
def invoke(name: str, data: str | None, wait: bool, url: str | None) -> None:
    """Invoke a function through its Netlify URL.

    \b
    Examples:
      backburner invoke hello
      backburner invoke slow-background --data '{"n": 3}' --wait
    """
    data = _data(data)
    client = Client.from_options(url)
    response = client.request(
        "POST", f"/.netlify/functions/{name}", content=data or "{}", headers={"content-type": "application/json"}
    )
    if response.status_code != 202:
        out.print(response.text, markup=False, highlight=False)
        sys.exit(0 if response.status_code < 400 else 1)
    run_id = response.headers["x-nf-request-id"]
    console.print(f"accepted: run [bold]{run_id}[/]")
    if not wait:
        out.print(run_id)
        return
    run = _wait(client, run_id)
    out.print_json(json.dumps(run))
    sys.exit(0 if run["status"] == "succeeded" else 1)


def _data(data: str | None) -> str | None:
    """``--data``: JSON text, or ``@file.json``; checked here so a typo never reaches the API."""
    if data and data.startswith("@"):
        data = Path(data[1:]).read_text()
    if data:
        try:
            json.loads(data)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--data") from None
    return data


@click.command()
@click.argument("run_id")
@click.option("--data", default=None, help="A new JSON payload (or @file.json); default: the original one.")
@click.option("--wait", is_flag=True, help="Wait for the new run to finish; exit 1 if it failed.")
@url_option
def replay(run_id: str, data: str | None, wait: bool, url: str | None) -> None:
    """Run RUN_ID's function again, with the same payload or a new one; prints the new run id.

    \b
    Examples:
      backburner replay 01JD3Z5W6X7Y8Z9A0B1C2D3E4F
      backburner replay 01JD3Z5W6X7Y8Z9A0B1C2D3E4F --data '{"day": "2026-11-27"}' --wait
    """
    data = _data(data)
    client = Client.from_options(url)
    headers = {"content-type": "application/json"}
    run = client.json("POST", f"/api/runs/{run_id}/replay", content=data or "", headers=headers)
    console.print(f"accepted: run [bold]{run['id']}[/] (a replay of {run_id})")
    if not wait:
        out.print(run["id"])
        return
    finished = _wait(client, run["id"])
    out.print_json(json.dumps(finished))
    sys.exit(0 if finished["status"] == "succeeded" else 1)


@click.command()
@click.argument("run_id")
@url_option
def cancel(run_id: str, url: str | None) -> None:
    """Cancel RUN_ID (and the runs it started); a running one stops within about a second."""
    run = Client.from_options(url).json("POST", f"/api/runs/{run_id}/cancel")
    out.print(run["status"] if run["status"] == "cancelled" else "cancel requested")


def _wait(client: Client, run_id: str) -> dict[str, Any]:
    from .live import wait

    return wait(client, run_id, console)


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
    return (datetime.now(UTC) - timedelta(seconds=ago)).isoformat()


@click.command()
@click.option("--function", "function", default=None)
@click.option("--status", default=None, type=click.Choice(STATUSES))
@click.option("--trigger", default=None, type=click.Choice(TRIGGERS))
@click.option("--since", default=None, callback=_moment, help="Created at or after: ISO 8601, or a duration ago (2h).")
@click.option("--until", default=None, callback=_moment, help="Created before: ISO 8601, or a duration ago.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 500))
@json_option
@url_option
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
      backburner runs --function nightly-report-background --status failed --limit 5
      backburner runs --trigger schedule --since 24h
      backburner runs --json | jq -r '.[0].id'
    """
    filters = {"function": function, "status": status, "trigger": trigger, "since": since, "until": until}
    params = {key: value for key, value in {**filters, "limit": limit}.items() if value}
    listing = Client.from_options(url).json("GET", "/api/runs", params=params)["runs"]
    if as_json:
        out.print_json(json.dumps(listing))
        return
    colours = {"succeeded": "green", "failed": "red", "running": "cyan", "retrying": "yellow"}
    # Ids and statuses are never cut: ids are for copying.
    table = Table(Column("id", no_wrap=True), "function", "trigger", Column("status", no_wrap=True), "attempt",
                  Column("created (UTC)", no_wrap=True))  # fmt: skip
    for run in listing:
        colour = colours.get(run["status"], "white")
        table.add_row(
            run["id"],
            run["function"],
            run["trigger"],
            f"[{colour}]{run['status']}[/]",
            f"{run['attempt']}/{run['max_attempts']}",
            run["created_at"][:19].replace("T", " "),
        )
    out.print(table)


@click.command()
@click.argument("run_id")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the run ends.")
@url_option
def logs(run_id: str, follow: bool, url: str | None) -> None:
    """Print a run's captured log lines (5000 are kept per run); --follow streams new ones until it ends.

    \b
    Examples:
      backburner logs 01J9Z3W6K8E7Q2M4T5V6X7Y8Z9
      backburner logs 01J9Z3W6K8E7Q2M4T5V6X7Y8Z9 --follow
    """
    from .live import print_logs

    print_logs(Client.from_options(url), run_id, follow, out, console)


@click.command()
@click.argument("run_id")
@click.argument("name")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@url_option
def download(run_id: str, name: str, output: Path | None, url: str | None) -> None:
    """Save one artifact of a run, with a progress bar.

    \b
    Examples:
      backburner download 01J9Z3W6K8E7Q2M4T5V6X7Y8Z9 report.csv
      backburner download 01J9Z3W6K8E7Q2M4T5V6X7Y8Z9 data/raw.parquet -o raw.parquet
    """
    client = Client.from_options(url)
    target = output or Path(Path(name).name)
    try:
        with client.http.stream("GET", f"/api/runs/{run_id}/artifacts/{name}", follow_redirects=True) as response:
            if response.status_code >= 400:
                response.read()
                raise click.ClickException(f"{response.status_code}: {response.text[:500]}")
            total = int(response.headers.get("content-length", 0)) or None
            columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
            with Progress(*columns, console=console) as bar, target.open("wb") as handle:
                task = bar.add_task(target.name, total=total)
                for chunk in response.iter_bytes():
                    handle.write(chunk)
                    bar.advance(task, len(chunk))
    except Exception as exc:
        if isinstance(exc, click.ClickException):
            raise
        raise click.ClickException(f"download failed: {exc}") from None
    console.print(f"saved {target}")
