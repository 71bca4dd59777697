"""Watching a run from the terminal: ``invoke --wait`` and ``logs --follow``, over the API's SSE streams.

Both read ``/api/runs/{id}/events`` or ``/api/runs/{id}/logs?follow=1`` (``api.streams``), so lines and
progress appear within about a quarter of a second of being written; where a proxy refuses streams, the client
looks at the run every 0.25-2 s instead.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn

from .client import Client, Run


def _line(entry: dict[str, Any]) -> str:
    """``[attempt] line`` as markup-safe text, dimming the prefix; stderr and errors in red."""
    text = escape(entry["line"])
    if entry.get("stream") == "stderr" or entry.get("level") in ("ERROR", "CRITICAL"):
        text = f"[red]{text}[/]"
    return f"[dim]\\[{entry.get('attempt')}][/] {text}"


def _show(bar: Progress, task: TaskID, run: dict[str, Any]) -> None:
    progress = run.get("progress") or {}
    note = progress.get("message") or f"attempt {run['attempt']}/{run['max_attempts']}"
    if run["status"] == "delayed":
        note = f"until {run.get('run_at')}"
    bar.update(
        task, description=run["status"], completed=progress.get("done") or 0, total=progress.get("total"), note=note
    )


def wait(client: Client, run_id: str, console: Console) -> Run:
    """Show a live progress bar and the run's log lines until it ends; return the final run."""
    # The note is the run's own progress message: shown as written, never as markup.
    note = TextColumn("{task.fields[note]}", markup=False)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), note)
    # Off the terminal (a pipe, CI) the bar shows nothing and rich would end it with a blank line: no bar there.
    with Progress(*columns, console=console, transient=True, disable=not console.is_interactive) as bar:
        task = bar.add_task("queued", total=None, note="")
        for event in client.events(run_id):
            if event.event == "line":
                bar.console.print(_line(event.json()), highlight=False, emoji=False)
            elif event.event == "run":
                _show(bar, task, event.json())
            elif event.event == "gap":
                bar.console.print(f"[dim]… {event.json()['dropped']} older lines were dropped by the log cap[/]")
    return client.get(run_id)


def print_logs(client: Client, run_id: str, follow: bool, out: Console, console: Console) -> None:
    """The captured lines; with ``follow``, then new ones as they are written until the run ends."""
    if not follow:
        for entry in client.logs(run_id):
            out.print(_line(entry), highlight=False, emoji=False)
        return
    for event in client.follow_logs(run_id):
        if event.event == "line":
            out.print(_line(event.json()), highlight=False, emoji=False)
        elif event.event == "gap":
            console.print(f"[dim]… {event.json()['dropped']} older lines were dropped by the log cap[/]")
        elif event.event == "end":
            console.print(f"[dim]run {run_id} {event.json()['status']}[/]")
