"""CLI tables: identity columns are never cut on a terminal; through a pipe the output is plain and whole."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from backburner.tables import Column, print_table
from tests.support.procs import wait_for
from tests.support.servers import ApiProc
from tests.support.sites import FUNCTIONS, TOML, make_site

ANSI = re.compile(r"\x1b\[")
LONG = "nightly-report-for-every-region-of-the-world-background"
RUN_ID = "01M91NX9HX3WXBA8WKZM41XRSP"
COLUMNS = (
    Column("id", identity=True),
    Column("function", identity=True),
    Column("trigger", drop=3),
    Column("status", identity=True, style=lambda status: "green"),
    Column("attempt", drop=2),
    Column("created (UTC)", drop=1, min_width=10),
)
ROWS = [
    (RUN_ID, LONG, "schedule", "succeeded", "1/3", "2026-12-04 23:23:24"),
    ("01M91NX9HX3WXBA8WKZM41XRSQ", "hello", "http", "retrying", "2/3", "2026-12-04 23:23:25"),
]


def rendered(width: int, terminal: bool) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=terminal, color_system=None)
    print_table(console, COLUMNS, ROWS)
    return buffer.getvalue()


@pytest.mark.parametrize("width", [200, 135, 130, 120, 110, 101, 100, 60, 20])
def test_on_a_terminal_ids_names_and_statuses_are_whole_at_any_width(width):
    text = rendered(width, terminal=True)
    for value in (RUN_ID, LONG, "succeeded", "retrying", "01M91NX9HX3WXBA8WKZM41XRSQ"):
        assert value in text, f"{value!r} was cut at width {width}:\n{text}"
    assert "…" not in text
    table_lines = [line for line in text.splitlines() if not line.startswith("left out")]
    if width >= 95:  # wide enough for the identity columns: a real table that fits the terminal
        assert all(len(line) <= width for line in table_lines), text
        assert "┃" in text


def test_narrow_columns_wrap_then_go_least_useful_first_and_a_note_says_which():
    # Minimum widths: identity 26 + 56 + 9, trigger 8, attempt 7, created 10 (it wraps); 3 per column + 1.
    wide = rendered(135, terminal=True)
    assert "schedule" in wide and "left out" not in wide
    middle = rendered(130, terminal=True)
    assert "schedule" not in middle and "1/3" in middle
    assert "left out to fit 130 columns: trigger (see --json for everything)" in middle
    wrapped = rendered(120, terminal=True)  # created (UTC) is kept, its date and time on two lines
    assert "left out to fit 120 columns: trigger, attempt" in wrapped
    assert "2026-12-04" in wrapped and "23:23:24" in wrapped and "2026-12-04 23:23:24" not in wrapped
    narrow = rendered(110, terminal=True)
    assert "left out to fit 110 columns: trigger, attempt, created (UTC)" in narrow


def test_off_a_terminal_the_table_is_plain_aligned_and_complete_whatever_the_width():
    text = rendered(20, terminal=False)
    lines = text.splitlines()
    assert lines[0].split() == ["id", "function", "trigger", "status", "attempt", "created", "(UTC)"]
    assert lines[1].split() == [RUN_ID, LONG, "schedule", "succeeded", "1/3", "2026-12-04", "23:23:24"]
    assert len(lines) == 3 and not ANSI.search(text) and "┃" not in text and "…" not in text
    assert lines[1].index(LONG) == lines[0].index("function") == lines[2].index("hello")  # aligned


def test_multi_line_values_stay_on_their_row_off_a_terminal():
    buffer = io.StringIO()
    print_table(Console(file=buffer, width=30), [Column("name", identity=True), Column("next")], [("a", "1\n2")])
    assert buffer.getvalue().splitlines() == ["name  next", "a     1, 2"]


# -- the CLI, as people and programs use it ----------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path) -> Path:
    long = FUNCTIONS["echo-background"]
    toml = TOML + f'\n[functions."{LONG}"]\n  schedule = "@daily"\n'
    return make_site(tmp_path / "site", {**FUNCTIONS, LONG: long}, toml)


def cli(*args: str, columns: int, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    merged = {**os.environ, "COLUMNS": str(columns), **(env or {})}
    merged.pop("FORCE_COLOR", None)
    return subprocess.run(
        [sys.executable, "-m", "backburner", *args], env=merged, capture_output=True, text=True, timeout=60
    )


def test_functions_and_schedules_through_a_pipe_are_plain_and_complete_with_a_narrow_columns(site):
    functions = cli("functions", "--site", str(site), columns=20)
    assert functions.returncode == 0, functions.stderr
    rows = {line.split()[0]: line.split() for line in functions.stdout.splitlines()[1:]}
    assert rows[LONG][:3] == [LONG, "background", "@daily"]
    assert rows["echo-background"][1] == "background" and rows["hello"][1] == "sync"
    assert not ANSI.search(functions.stdout) and "…" not in functions.stdout and "┃" not in functions.stdout
    schedules = cli("schedules", "--site", str(site), "--count", "2", columns=20)
    line = next(line for line in schedules.stdout.splitlines() if line.startswith(LONG))
    assert line.split()[:6] == [LONG, LONG, "@daily", "UTC", "file", "active"] and line.count("T00:00:00Z") == 2


def test_runs_through_a_pipe_show_whole_ids_names_and_statuses(site, env, worker, runtime):
    api = ApiProc(site, env).start()
    try:
        run_id = httpx.post(f"{api.url}/api/functions/{LONG}/runs", json={}).json()["id"]
        wait_for(lambda: runtime.store.get(run_id).status == "succeeded", timeout=60, message="the run")
        listing = cli("runs", "--url", api.url, columns=30)
    finally:
        api.stop()
    assert listing.returncode == 0, listing.stderr
    header, row = listing.stdout.splitlines()[:2]
    assert header.split() == ["id", "function", "trigger", "status", "attempt", "created", "(UTC)"]
    assert row.split()[:5] == [run_id, LONG, "api", "succeeded", "1/3"]
    assert not ANSI.search(listing.stdout)


def in_a_terminal(args: list[str], columns: int, rows: int = 40) -> str:
    """Run ``args`` on a pseudo-terminal of ``columns`` x ``rows`` and return what it printed."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = {key: value for key, value in os.environ.items() if key not in ("COLUMNS", "LINES", "FORCE_COLOR")}
    env["TERM"] = "xterm-256color"
    process = subprocess.Popen(args, stdin=follower, stdout=follower, stderr=follower, env=env, close_fds=True)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the program is done
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks).decode("utf-8", "replace")


def test_functions_on_a_narrow_terminal_keep_every_name_whole(site):
    text = in_a_terminal([sys.executable, "-m", "backburner", "functions", "--site", str(site)], columns=80)
    plain = ANSI.sub("", re.sub(r"\x1b\[[0-9;]*m", "", text))
    assert LONG in plain and "echo-background" in plain and "…" not in plain
    assert "┃" in plain  # a real table, fitted to the terminal
    assert all(len(line) <= 80 for line in plain.splitlines() if "┃" in line or "│" in line)
    assert "left out to fit 80 columns" in plain
