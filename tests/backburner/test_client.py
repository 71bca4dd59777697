"""backburner.client against a running `backburner api` and a real worker: what application code does with it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from backburner.client import (
    ApiError,
    AsyncClient,
    Client,
    Conflict,
    NotFound,
    Unauthorized,
    Unreachable,
)
from tests.support.http import StreamProxy
from tests.support.servers import ApiProc, free_port
from tests.support.sites import FUNCTIONS, TOML, make_site

WRITER = """
    import json, time
    def handler(event, context):
        payload = json.loads(event["body"] or "{}")
        day = payload.get("day", "2026-01-01")
        for n in range(payload.get("steps", 1)):
            context.progress(n + 1, payload.get("steps", 1))
            time.sleep(payload.get("pause", 0))
        context.artifacts.write(f"{day}/report.html", f"<h1>{day}</h1>" + "x" * payload.get("size", 0))
        context.artifacts.write("data.csv", "a,b\\n1,2\\n")
        return {"day": day}
"""


LONG = """
    import time
    def handler(event, context):
        time.sleep(60)
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    toml = TOML + "".join(
        f'\n[backburner.functions."{name}"]\n  retries = []\n'
        for name in ("writer-background", "fail-background", "long-background")
    )
    return make_site(tmp_path / "site", {**FUNCTIONS, "writer-background": WRITER, "long-background": LONG}, toml)


@pytest.fixture
def api(site: Path, env: dict[str, str]) -> Iterator[ApiProc]:
    proc = ApiProc(site, env).start()
    yield proc
    proc.stop()


@pytest.fixture
def client(api: ApiProc) -> Iterator[Client]:
    with Client(api.url) as c:
        yield c


def test_importing_the_client_loads_neither_dramatiq_redis_nor_pandas() -> None:
    code = (
        "import sys, backburner.client\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('dramatiq', 'redis', 'pandas', 'numpy'))\n"
        "print(heavy)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_trigger_wait_and_download_what_the_run_wrote(client: Client, worker: object, tmp_path: Path) -> None:
    run = client.trigger("writer-background", {"day": "2026-03-01", "steps": 3, "pause": 0.1, "size": 300_000})
    assert run.status == "queued" and run.trigger == "api" and run.function == "writer-background"
    done = client.wait(run.id, timeout=60)
    assert done.succeeded and done.terminal and done.result == {"day": "2026-03-01"}
    assert done.progress.done == 3 and done.progress.total == 3
    assert done.created_at.tzinfo is not None and done.finished_at is not None and done.finished_at >= done.created_at
    assert [a.outcome for a in done.attempts] == ["succeeded"]
    assert {a.name for a in done.artifacts} == {"2026-03-01/report.html", "data.csv"}
    assert client.get(run.id).data == done.data
    [listed] = [r for r in client.runs("writer-background") if r.id == run.id]
    assert listed.progress.done == 3 and listed.progress.total == 3  # the listing reads progress too

    seen: list[tuple[int, int | None]] = []
    saved = client.download(run.id, "2026-03-01/report.html", tmp_path, progress=lambda d, t: seen.append((d, t)))
    assert saved == tmp_path / "report.html" and saved.read_text().startswith("<h1>2026-03-01</h1>")
    assert seen[-1] == (saved.stat().st_size, saved.stat().st_size) and saved.stat().st_size > 300_000
    named = client.download(run.id, "data.csv", tmp_path / "renamed.csv")
    assert named.read_text() == "a,b\n1,2\n"
    latest = client.latest_artifact("writer-background", "2026-03-01/report.html", tmp_path / "latest.html")
    assert latest.read_bytes() == saved.read_bytes()

    with pytest.raises(NotFound) as missing:
        client.download(run.id, "nope.txt", tmp_path / "nope.txt")
    assert missing.value.status == 404 and "nope.txt" in missing.value.message
    assert not (tmp_path / "nope.txt").exists() and not list(tmp_path.glob(".*.part"))  # nothing half-written


def test_wait_times_out_and_cancel_stops_the_run(client: Client, worker: object) -> None:
    run = client.trigger("long-background")
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        client.wait(run.id, timeout=1.5)
    assert 1.4 < time.monotonic() - started < 6
    cancelled = client.cancel(run.id)
    assert cancelled.status in ("running", "queued", "cancelled")
    assert client.wait(run.id, timeout=30).status == "cancelled"
    with pytest.raises(Conflict) as conflict:
        client.cancel(run.id)
    assert conflict.value.status == 409 and "already cancelled" in conflict.value.message


def test_wait_falls_back_to_polling_when_streams_do_not_work(api: ApiProc, worker: object) -> None:
    proxy = StreamProxy(api.url, 200, b"{}", "application/json")  # a proxy that buffers or rewrites SSE
    try:
        with Client(proxy.url) as through_proxy:
            run = through_proxy.trigger("writer-background", {"steps": 4, "pause": 0.5})
            done = through_proxy.wait(run.id, timeout=60)
        assert done.succeeded
        assert proxy.intercepted == 3  # three tries at the stream, then polling
    finally:
        proxy.close()


def test_runs_follows_cursors_newest_first(client: Client, api: ApiProc) -> None:
    ids = [client.trigger("sleepy-background", {"n": n}).id for n in range(230)]
    listed = [run.id for run in client.runs(function="sleepy-background")]
    assert listed == ids[::-1]  # three pages of 100, in order, nothing twice
    assert [run.id for run in client.runs("sleepy-background", "queued", limit=5)] == ids[::-1][:5]
    assert list(client.runs(function="sleepy-background", status="succeeded")) == []
    assert [r.id for r in client.runs(function="sleepy-background", until="2000-01-01T00:00:00Z")] == []


def test_replay_one_run_and_every_failed_run_once(client: Client, worker: object) -> None:
    failed = [client.trigger("fail-background", {"n": n}) for n in range(3)]
    for run in failed:
        assert client.wait(run.id, timeout=60).status == "failed"
    again = client.replay(failed[0].id, {"n": 99})
    assert again.replay_of == failed[0].id and again.trigger == "replay"
    assert client.wait(again.id, timeout=60).status == "failed"
    replayed = client.replay_failed(function="fail-background")
    # failed[0] was replayed already; its replay failed and was not. The replays this call makes fail too,
    # but they are newer than its scan.
    assert sorted(item.of for item in replayed) == sorted([again.id, *(run.id for run in failed[1:])])
    assert all(item.run.replay_of == item.of for item in replayed)
    assert client.get(failed[1].id).data["replayed_by"] == next(i.run.id for i in replayed if i.of == failed[1].id)
    for item in replayed:
        client.wait(item.run.id, timeout=60)
    second = client.replay_failed(function="fail-background")
    assert sorted(item.of for item in second) == sorted(item.run.id for item in replayed)
    third = client.replay_failed(function="fail-background")  # only failures that are newer still (the replays)
    done_before = {failed[0].id} | {i.of for i in replayed} | {i.of for i in second}
    assert not {i.of for i in third} & done_before


def test_errors_are_typed(client: Client, api: ApiProc, site: Path, env: dict[str, str]) -> None:
    with pytest.raises(NotFound) as unknown:
        client.get("01NOPE")
    assert (unknown.value.status, unknown.value.code) == (404, "run_not_found")
    with pytest.raises(NotFound):
        client.trigger("no-such-function")
    with pytest.raises(ApiError) as bad:
        client.create_schedule("no spaces", "echo-background", "@daily")
    assert bad.value.status == 400 and "not a valid schedule name" in bad.value.message
    with pytest.raises(Unreachable) as down, Client(f"http://127.0.0.1:{free_port()}") as nobody:
        nobody.get("x")
    assert down.value.status == 0 and "Cannot reach" in down.value.message

    token = "client-test-token-0123456789"
    locked = ApiProc(site, {**env, "BACKBURNER_DEV": "0", "BACKBURNER_API_TOKEN": token}).start()
    try:
        with pytest.raises(Unauthorized), Client(locked.url, token="wrong-token-0123456789") as wrong:
            wrong.get("x")
        with Client(locked.url, token=token) as right:
            assert right.trigger("echo-background", {"a": 1}).status == "queued"
    finally:
        locked.stop()


def test_schedules_and_backfill_from_code(client: Client) -> None:
    schedule = client.create_schedule("echo-daily", "echo-background", "0 6 * * *", payload={"region": "eu"})
    assert (schedule.source, schedule.payload, schedule.cron) == ("api", {"region": "eu"}, "0 6 * * *")
    assert schedule.last_fired is None  # no tick has fired yet
    assert "echo-daily" in {s.name for s in client.schedules()}
    done = client.backfill("echo-daily", "2026-02-01", "2026-02-04")
    assert [run.scheduled_for.day for run in done] == [1, 2, 3] and done.skipped == []
    assert all(run.trigger == "backfill" and run.schedule == "echo-daily" for run in done)
    again = client.backfill("echo-daily", "2026-02-01T00:00:00Z", "2026-02-05T00:00:00Z")
    assert len(again) == 1 and [t.day for t in again.skipped] == [1, 2, 3]
    assert client.pause_schedule("echo-daily").paused and not client.resume_schedule("echo-daily").paused
    assert client.trigger_schedule("echo-daily").schedule == "echo-daily"
    client.delete_schedule("echo-daily")
    with pytest.raises(NotFound):
        client.delete_schedule("echo-daily")


def test_the_async_client_does_the_same(api: ApiProc, worker: object, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with AsyncClient(api.url) as client:
            run = await client.trigger("writer-background", {"day": "2026-04-02", "steps": 2, "pause": 0.2})
            done = await client.wait(run.id, timeout=60)
            assert done.succeeded and done.result == {"day": "2026-04-02"}
            saved = await client.download(run.id, "2026-04-02/report.html", f"{tmp_path}/new/folder/")
            assert saved == tmp_path / "new" / "folder" / "report.html"
            assert saved.read_text() == "<h1>2026-04-02</h1>"
            listed = [r.id async for r in client.runs(function="writer-background")]
            assert listed == [run.id]
            kinds = [event.event async for event in client.events(run.id)]
            assert kinds[0] == "run" and kinds[-1] == "end"
            echoed = await client.wait((await client.trigger("echo-background", {"a": 1})).id, timeout=60)
            assert [entry["line"] for entry in await client.logs(echoed.id)] == ["echoing"]
            followed = [event async for event in client.follow_logs(echoed.id)]
            assert [e.json()["line"] for e in followed if e.event == "line"] == ["echoing"]
            assert followed[-1].event == "end"
            answer = await client.invoke(
                "echo", b'{"b": 2}', headers={"x-note": "hi", "content-type": "application/json"}
            )
            assert answer.status_code == 200 and answer.json()["body"] == '{"b": 2}'
            assert answer.json()["headers"]["x-note"] == "hi"
            with pytest.raises(NotFound):
                await client.invoke("no-such-function")
            with pytest.raises(NotFound):
                await client.get("01NOPE")
            long = await client.trigger("long-background")
            with pytest.raises(TimeoutError):
                await client.wait(long.id, timeout=1)
            await client.cancel(long.id)

    asyncio.run(scenario())


def test_cli_replay_failed_and_download_latest(api: ApiProc, worker: object, client: Client, tmp_path: Path) -> None:
    failed = client.trigger("fail-background", {})
    client.wait(failed.id, timeout=60)
    env = {**os.environ, "BACKBURNER_URL": api.url}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "backburner", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)

    done = cli("replay", "--failed", "--function", "fail-background", "--since", "1h", "--json")
    assert done.returncode == 0, done.stderr
    [item] = json.loads(done.stdout)
    assert item["of"] == failed.id and item["run"]["replay_of"] == failed.id
    again = json.loads(cli("replay", "--failed", "--function", "fail-background", "--json").stdout)
    assert failed.id not in {i["of"] for i in again}  # replayed once; only its (failed) replay may come up
    both = cli("replay", failed.id, "--failed")
    assert both.returncode == 2 and "give no RUN_ID" in both.stderr

    wrote = client.wait(client.trigger("writer-background", {"day": "2026-05-05"}).id, timeout=60)
    assert wrote.succeeded
    got = cli("download", "latest:writer-background", "2026-05-05/report.html")
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "report.html").read_text() == "<h1>2026-05-05</h1>"
    into = cli("download", wrote.id, "2026-05-05/report.html", "-o", "new-folder/")  # made, then saved inside
    assert into.returncode == 0, into.stderr
    assert (tmp_path / "new-folder" / "report.html").read_text() == "<h1>2026-05-05</h1>"
    (tmp_path / "a-file").write_text("")
    for output, why in (
        ("a-file/", "File exists"),
        ("missing/sub/report.html", "the folder missing/sub does not exist"),
    ):
        refused = cli("download", wrote.id, "2026-05-05/report.html", "-o", output)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
        assert f"cannot save 2026-05-05/report.html to {output}: {why}" in refused.stderr, refused.stderr


def test_cli_schedules_create_list_backfill_delete(api: ApiProc, site: Path, env: dict[str, str]) -> None:
    base = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    through_api = {**base, "BACKBURNER_URL": api.url, "BACKBURNER_SITE": str(site)}

    def cli(*args: str, environ: dict[str, str] = through_api) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "backburner", *args]
        return subprocess.run(command, env=environ, capture_output=True, text=True, timeout=60)

    made = cli("schedules", "create", "echo-eu", "--function", "echo-background", "--cron", "0 6 * * *",
               "--timezone", "Europe/Berlin", "--payload", '{"region": "eu"}')  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "created echo-eu" in made.stderr
    bad = cli("schedules", "create", "x", "--function", "echo-background", "--cron", "0 25 * * *")
    assert bad.returncode == 1 and "out of range" in bad.stderr

    for environ in (through_api, {**through_api, **env}):  # from the API, then from Redis (REDIS_URL set)
        listed = cli("schedules", "--json", "--from", "2026-03-01T00:00:00Z", "--count", "1", environ=environ)
        assert listed.returncode == 0, listed.stderr
        assert json.loads(listed.stdout) == [
            {"name": "echo-eu", "function": "echo-background", "schedule": "0 6 * * *", "timezone": "Europe/Berlin",
             "paused": False, "next_runs": ["2026-03-01T05:00:00Z"], "source": "api"},
        ]  # fmt: skip

    filled = cli("schedules", "backfill", "echo-eu", "--from", "2026-02-01", "--to", "2026-02-03", "--json")
    assert filled.returncode == 0, filled.stderr
    answer = json.loads(filled.stdout)
    assert [r["scheduled_for"] for r in answer["runs"]] == ["2026-02-01T05:00:00.000Z", "2026-02-02T05:00:00.000Z"]
    assert answer["skipped"] == []
    again = cli("schedules", "backfill", "echo-eu", "--from", "2026-02-01", "--to", "2026-02-03")
    assert again.returncode == 0 and "created 0 runs; skipped 2 ticks" in again.stderr
    too_many = cli("schedules", "backfill", "echo-eu", "--from", "2020-01-01", "--to", "2026-01-01")
    assert too_many.returncode == 1 and "at most 1,000 ticks" in too_many.stderr

    gone = cli("schedules", "delete", "echo-eu")
    assert gone.returncode == 0 and "deleted echo-eu" in gone.stderr
    assert json.loads(cli("schedules", "--json").stdout) == []
    offline = cli("schedules", "--json", environ={**through_api, "BACKBURNER_URL": f"http://127.0.0.1:{free_port()}"})
    assert offline.returncode == 0 and json.loads(offline.stdout) == []
    assert "Cannot reach the Backburner API" in offline.stderr and "netlify.toml's schedules only" in offline.stderr


def test_delayed_runs_from_code_and_the_shell(client: Client, api: ApiProc, worker: object) -> None:
    from datetime import UTC, datetime, timedelta

    run = client.trigger("writer-background", {"day": "2026-06-01"}, delay=timedelta(seconds=1.5))
    assert run.status == "delayed" and run.run_at is not None and run.run_at > run.created_at
    done = client.wait(run.id, timeout=30)  # through delayed, queued and running
    assert done.succeeded and done.started_at is not None and done.started_at >= run.run_at
    at = datetime.now(UTC) + timedelta(hours=3)
    later = client.trigger("echo-background", run_at=at)
    assert later.run_at is not None and abs((later.run_at - at).total_seconds()) < 0.01
    assert client.cancel(later.id).status == "cancelled"
    for long in (timedelta(days=30), 2_592_000, 1_234_567.25):  # 1e6 s and more: sent in full, not as "2.592e+06s"
        far = client.trigger("echo-background", delay=long)
        seconds = long.total_seconds() if isinstance(long, timedelta) else long
        assert far.status == "delayed" and far.run_at is not None
        assert abs((far.run_at - far.created_at).total_seconds() - seconds) < 1
        assert client.cancel(far.id).status == "cancelled"
    with pytest.raises(ValueError, match="finite"):
        client.trigger("echo-background", delay=float("inf"))
    with pytest.raises(ApiError) as bad:
        client.trigger("echo-background", delay="2y")
    assert bad.value.status == 400 and "delay" in bad.value.message
    with pytest.raises(ValueError):
        client.trigger("echo-background", delay=5, run_at=at)

    env = {**os.environ, "BACKBURNER_URL": api.url}
    command = [sys.executable, "-m", "backburner", "invoke", "echo-background", "--data", '{"a": 1}', "--delay", "1s"]
    shell = subprocess.run([*command, "--wait"], env=env, capture_output=True, text=True, timeout=60)
    assert shell.returncode == 0, shell.stderr
    assert "delayed until" in shell.stderr and json.loads(shell.stdout)["status"] == "succeeded"


def test_a_run_has_every_field_the_api_returns_as_an_attribute(client: Client, worker: object) -> None:
    failed = client.wait(client.trigger("fail-background", {"n": 1}).id, timeout=60)
    again = client.replay(failed.id)
    run = client.get(failed.id)
    assert set(run.data) <= {f for f in vars(run) if f != "data"}, set(run.data) - set(vars(run))
    assert run.replayed_by == again.id and run.deliveries == [] and run.artifact_store
    assert run.time_limit_s == run.data["time_limit_s"] and run.retry_delays_s == []
    assert run.attempts[0].worker and run.attempts[0].worker == run.data["attempts"][0]["worker"]
    assert set(run.data["attempts"][0]) <= set(vars(run.attempts[0]))
