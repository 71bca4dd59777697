"""What the CLI prints when the input, the terminal or the user gets in the way: one clear line, never a
traceback."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pytest

from backburner.cli import main
from backburner.client import Client, NotFound
from jobs.runtime import Runtime
from tests.support.procs import wait_for
from tests.support.servers import ApiProc, free_port
from tests.support.sites import FUNCTIONS, TOML, make_site

SMILE = ":smile: [bold]verbatim[/bold]"
SMILING = {
    "smile": f"""
        def handler(event, context):
            return {{"statusCode": 200, "body": {SMILE!r}}}
    """,
    "smile-background": f"""
        def handler(event, context):
            print({SMILE!r})
            context.progress(1, 1, {SMILE!r})
            return {{"said": {SMILE!r}}}
    """,
    "hold-background": """
        import json, os, time
        def handler(event, context):
            print("holding", flush=True)
            path = json.loads(event["body"])["until"]
            while not os.path.exists(path):
                time.sleep(0.05)
    """,
    "writer-background": """
        def handler(event, context):
            context.artifacts.write("day/report.html", "<h1>report</h1>")
    """,
}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return make_site(tmp_path / "site", {**FUNCTIONS, **SMILING}, TOML)


@pytest.fixture
def api(site: Path, env: dict[str, str]) -> Iterator[ApiProc]:
    proc = ApiProc(site, env).start()
    yield proc
    proc.stop()


def run_cli(*args: str, url: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BACKBURNER_URL": url or f"http://127.0.0.1:{free_port()}", "COLUMNS": "200"}
    command = [sys.executable, "-m", "backburner", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, cwd=cwd)


@pytest.mark.parametrize("command", [["invoke", "echo"], ["replay", "01JD3Z5W6X7Y8Z9A0B1C2D3E4F"]])
def test_data_from_a_file_that_cannot_be_read_is_a_usage_error(tmp_path: Path, command: list[str]) -> None:
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"name": "Jos\xe9"}')
    cases = {
        str(tmp_path / "missing.json"): "No such file or directory",
        str(tmp_path): "Is a directory",
        str(latin): "not UTF-8 text (invalid continuation byte)",
    }
    for name, why in cases.items():
        done = run_cli(*command, "--data", f"@{name}")
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert f"Error: Invalid value for --data: cannot read {name}: {why}" in done.stderr.splitlines(), done.stderr


def test_user_text_is_printed_verbatim_never_as_emoji_or_markup(api: ApiProc, worker: object) -> None:
    now = run_cli("invoke", "smile", url=api.url)
    assert now.returncode == 0 and now.stdout.strip() == SMILE, now.stdout
    waited = run_cli("invoke", "smile-background", "--wait", url=api.url)
    assert waited.returncode == 0, waited.stderr
    assert f"[1] {SMILE}" in waited.stderr.splitlines(), waited.stderr
    run = json.loads(waited.stdout)
    assert run["result"] == {"said": SMILE}
    for follow in ((), ("--follow",)):
        logged = run_cli("logs", run["id"], *follow, url=api.url)
        assert logged.returncode == 0 and logged.stdout.splitlines() == [f"[1] {SMILE}"], logged.stdout
    with Client(api.url) as client:
        assert client.get(run["id"]).progress.message == SMILE


def test_download_latest_without_a_function_name_is_a_usage_error(tmp_path: Path) -> None:
    done = run_cli("download", "latest:", "report.html", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "Error: Give a RUN_ID (or latest:FUNCTION, with the function's name)" in done.stderr, done.stderr
    assert list(tmp_path.iterdir()) == []
    with Client(f"http://127.0.0.1:{free_port()}") as client, pytest.raises(ValueError, match="must not be empty"):
        client.latest_artifact("", "report.html", tmp_path)


def test_download_destinations_that_cannot_work_leave_nothing_and_say_so_in_one_line(
    api: ApiProc, worker: object, tmp_path: Path
) -> None:
    with Client(api.url) as client:
        run = client.wait(client.trigger("writer-background").id, timeout=60)
        assert run.succeeded
        with pytest.raises(FileNotFoundError, match="the folder .*missing/sub does not exist"):
            client.download(run.id, "day/report.html", tmp_path / "missing" / "sub" / "report.html")
        with pytest.raises(NotFound):
            client.download(run.id, "nope.html", f"{tmp_path}/made/for/nothing/")
    assert not (tmp_path / "made").exists() and not (tmp_path / "missing").exists()

    refused = run_cli("download", run.id, "day/report.html", "-o", "missing/sub/report.html", url=api.url, cwd=tmp_path)
    assert refused.returncode == 1, refused.stderr
    assert refused.stderr.splitlines() == [
        "Error: cannot save day/report.html to missing/sub/report.html: the folder missing/sub does not exist"
    ], refused.stderr
    assert refused.stdout == ""
    absent = run_cli("download", run.id, "nope.html", "-o", "made/", url=api.url, cwd=tmp_path)
    assert absent.returncode == 1 and absent.stderr.startswith("Error: 404: "), absent.stderr
    assert len(absent.stderr.splitlines()) == 1 and not (tmp_path / "made").exists(), absent.stderr
    got = run_cli("download", run.id, "day/report.html", "-o", "made/", url=api.url, cwd=tmp_path)
    assert got.returncode == 0 and (tmp_path / "made" / "report.html").read_text() == "<h1>report</h1>", got.stderr


def test_ctrl_c_while_watching_says_the_run_goes_on_and_exits_130(
    api: ApiProc, start_worker: Callable[..., object], runtime: Runtime, tmp_path: Path
) -> None:
    start_worker(threads=4)  # three runs hold at once
    wait_for(lambda: runtime.client.zcard(runtime.store.keys.workers), timeout=30, message="worker heartbeat")
    until = tmp_path / "release"
    env = {**os.environ, "BACKBURNER_URL": api.url, "COLUMNS": "300"}
    base = [sys.executable, "-m", "backburner"]
    data = json.dumps({"until": str(until)})
    try:
        with Client(api.url) as client:
            first = client.trigger("hold-background", {"until": str(until)})
            watches = [
                ([*base, "invoke", "hold-background", "--data", data, "--wait"], "stderr"),
                ([*base, "replay", first.id, "--wait"], "stderr"),
                ([*base, "logs", first.id, "--follow"], "stdout"),
            ]
            for command, where in watches:
                with subprocess.Popen(
                    command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
                ) as watching:
                    seen = []
                    stream = watching.stderr if where == "stderr" else watching.stdout
                    assert stream is not None
                    while not seen or "holding" not in seen[-1]:  # the run's line is shown: it is watching
                        line = stream.readline()
                        assert line, f"{command} ended before the run's line: {seen}"
                        seen.append(line)
                    watching.send_signal(signal.SIGINT)
                    stdout, stderr = watching.communicate(timeout=30)
                said = ("".join(seen) + stderr if where == "stderr" else stderr).splitlines()
                run_id = first.id if "logs" in command else said[0].removeprefix("accepted: run ").split(" ")[0]
                assert watching.returncode == 130, said
                # After "accepted: run ..." and the run's line (a log line may come twice under load: log writes
                # are at least once, and a retried write is not what this test is about).
                after = [line for line in said[1:] if "holding" not in line] if where == "stderr" else said
                assert after == [
                    f"Stopped watching; run {run_id} goes on. Follow it with: backburner logs {run_id} --follow"
                ], said
                assert "Aborted!" not in stderr and "Traceback" not in stderr, stderr
                assert client.get(run_id).status == "running"
    finally:
        until.touch()


def test_help_texts_name_only_functions_of_the_example_site() -> None:
    """Examples in --help work as written against `backburner dev` (the example site, netlify/functions)."""
    root = Path(__file__).resolve().parents[2]
    functions = {path.name.removesuffix(".py") for path in (root / "netlify" / "functions").iterdir()}

    def helps(command: click.Command, ctx: click.Context) -> Iterator[tuple[str, str]]:
        yield ctx.command_path, command.get_help(ctx)
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from helps(sub, click.Context(sub, info_name=name, parent=ctx))

    for path, text in helps(main, click.Context(main, info_name="backburner")):
        named = set(re.findall(r"\b[a-z0-9-]+-background\b", text))
        assert named <= functions, f"`{path} --help` names {sorted(named - functions)}, not in netlify/functions"
