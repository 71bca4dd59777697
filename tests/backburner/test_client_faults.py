"""backburner.client against APIs that misbehave: small servers on free ports that stay silent, refuse
streams or answer what Backburner never would."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from backburner.client import AsyncClient, BadAnswer, Client, NotFound, Unauthorized, Unreachable
from tests.support.http import Quiet, Served, StreamProxy
from tests.support.procs import wait_for
from tests.support.servers import ApiProc


@pytest.fixture
def api(site: Path, env: dict[str, str]) -> Iterator[ApiProc]:
    proc = ApiProc(site, env).start()
    yield proc
    proc.stop()


def release_after_a_refusal(proxy: StreamProxy, until: Path) -> None:
    """Let a ``wait-background`` run finish once the proxy refused one more stream: ``wait`` saw the refusal."""
    seen = proxy.intercepted

    def release() -> None:
        wait_for(lambda: proxy.intercepted > seen, message="a refused stream")
        until.touch()

    threading.Thread(target=release, daemon=True).start()


REFUSALS = {
    "403": (403, b'{"message": "Forbidden"}', "application/json"),
    "404": (404, b"<html>Not Found</html>", "text/html"),
    "502": (502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"),
}


@pytest.mark.parametrize("refusal", REFUSALS.values(), ids=REFUSALS.keys())
def test_wait_events_and_the_cli_poll_where_streams_are_refused(
    api: ApiProc, worker: object, refusal: tuple[int, bytes, str], tmp_path: Path
) -> None:
    proxy = StreamProxy(api.url, *refusal)
    try:
        with Client(proxy.url) as client:
            blocked = client.trigger("wait-background", {"until": str(tmp_path / "sync")})
            release_after_a_refusal(proxy, tmp_path / "sync")
            assert client.wait(blocked.id, timeout=60).succeeded
            assert proxy.intercepted == 1  # one try at the stream, then polling
            run = client.trigger("echo-background", {"a": 1})
            assert client.wait(run.id, timeout=60).succeeded
            events = list(client.events(run.id))
            assert "run" in [e.event for e in events] and events[-1].event == "end"
            assert [e.json()["line"] for e in events if e.event == "line"] == ["echoing"]
            assert [e.json()["line"] for e in client.follow_logs(run.id) if e.event == "line"] == ["echoing"]
            with pytest.raises(NotFound):  # a run that does not exist, from GET /api/runs/{id}
                client.wait("01JD3Z5W6X7Y8Z9A0B1C2D3E4F", timeout=10)
            with pytest.raises(NotFound):
                list(client.events("01JD3Z5W6X7Y8Z9A0B1C2D3E4F"))

        async def scenario() -> list[str]:
            async with AsyncClient(proxy.url) as client:
                blocked = await client.trigger("wait-background", {"until": str(tmp_path / "async")})
                release_after_a_refusal(proxy, tmp_path / "async")
                assert (await client.wait(blocked.id, timeout=60)).succeeded
                followed = [e.json()["line"] async for e in client.follow_logs(run.id) if e.event == "line"]
                assert followed == ["echoing"]
                return [event.event async for event in client.events(run.id)]

        kinds = asyncio.run(scenario())
        assert "run" in kinds and "line" in kinds and kinds[-1] == "end"

        env = {**os.environ, "BACKBURNER_URL": proxy.url, "COLUMNS": "200"}
        command = [sys.executable, "-m", "backburner"]
        waited = subprocess.run(
            [*command, "invoke", "echo-background", "--wait"], env=env, capture_output=True, text=True, timeout=60
        )
        assert waited.returncode == 0 and "echoing" in waited.stderr, waited.stderr
        followed = subprocess.run(
            [*command, "logs", run.id, "--follow"], env=env, capture_output=True, text=True, timeout=60
        )
        assert followed.returncode == 0 and "echoing" in followed.stdout, followed.stderr
    finally:
        proxy.close()


def test_a_stream_refused_with_401_still_raises(api: ApiProc) -> None:
    proxy = StreamProxy(api.url, 401, b'{"error": {"code": "unauthorized", "message": "no"}}', "application/json")
    try:
        with Client(proxy.url) as client:
            run = client.trigger("echo-background")  # no worker: it stays queued
            with pytest.raises(Unauthorized):
                client.wait(run.id, timeout=30)
            with pytest.raises(Unauthorized):
                list(client.events(run.id))
    finally:
        proxy.close()


@pytest.fixture
def silent() -> Iterator[str]:
    """A URL where connections are accepted (by the kernel's backlog) and never answered."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_wait_on_a_silent_api_raises_timeout_error_at_its_own_timeout(silent: str) -> None:
    started = time.monotonic()
    with Client(silent) as client, pytest.raises(TimeoutError):
        client.wait("01JD3Z5W6X7Y8Z9A0B1C2D3E4F", timeout=1)
    assert time.monotonic() - started < 5  # not the client's 30 s, then Unreachable


def test_async_wait_on_a_silent_api_raises_timeout_error_at_its_own_timeout(silent: str) -> None:
    async def scenario() -> None:
        async with AsyncClient(silent) as client:
            await client.wait("01JD3Z5W6X7Y8Z9A0B1C2D3E4F", timeout=1)

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        asyncio.run(scenario())
    assert time.monotonic() - started < 5


class Fixed(Served):
    """A server that answers every request with the same ``status``, ``content_type`` and ``body``."""

    def __init__(self, status: int, content_type: str, body: bytes) -> None:
        class Handler(Quiet):
            def _answer(self) -> None:
                self.body()
                self.answer(status, body, content_type)

            do_GET = do_POST = do_DELETE = _answer

        super().__init__(Handler)


STRANGERS = {
    "text": (200, "text/plain", b"hello"),
    "html": (200, "text/html", b"<html><body>hello from nginx</body></html>"),
    "shape": (200, "application/json", b'{"unexpected": ["hello"]}'),
    "list": (200, "application/json", b'["hello"]'),
    "proxy-502": (502, "text/html", b"<html><h1>502 Bad Gateway hello</h1></html>"),
}


@pytest.mark.parametrize("answer", STRANGERS.values(), ids=STRANGERS.keys())
def test_answers_that_are_not_backburners_json_raise_bad_answer(answer: tuple[int, str, bytes]) -> None:
    status, kind, body = answer
    stranger = Fixed(status, kind, body)
    run_id = "01JD3Z5W6X7Y8Z9A0B1C2D3E4F"
    try:
        with Client(stranger.url) as client:
            calls = {
                "get": lambda: client.get(run_id),
                "trigger": lambda: client.trigger("echo-background"),
                "runs": lambda: list(client.runs()),
                "cancel": lambda: client.cancel(run_id),
                "replay_failed": lambda: client.replay_failed(),
                "schedules": lambda: client.schedules(),
                "backfill": lambda: client.backfill("daily", "2026-01-01", "2026-01-02"),
                "logs": lambda: client.logs(run_id),
            }
            for name, call in calls.items():
                with pytest.raises(BadAnswer) as strange:
                    call()
                said = str(strange.value)
                assert strange.value.status == status and "the answer is not Backburner's JSON" in said, (name, said)
                assert "hello" in said and kind in said, (name, said)

        async def scenario() -> None:
            async with AsyncClient(stranger.url) as client:
                await client.get(run_id)

        with pytest.raises(BadAnswer, match="not Backburner's JSON"):
            asyncio.run(scenario())

        env = {**os.environ, "BACKBURNER_URL": stranger.url, "COLUMNS": "200"}
        for args in (["runs"], ["logs", run_id], ["cancel", run_id], ["replay", run_id]):
            done = subprocess.run(
                [sys.executable, "-m", "backburner", *args], env=env, capture_output=True, text=True, timeout=60
            )
            assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
            assert len(done.stderr.strip().splitlines()) == 1, done.stderr
            assert f"Error: {status}: the answer is not Backburner's JSON" in done.stderr, done.stderr
    finally:
        stranger.close()


BAD_KEYS = {"non-ascii": "ключ", "newline": "a\nb", "empty": "", "long": "k" * 256, "tab": "a\tb"}


@pytest.mark.parametrize("key", BAD_KEYS.values(), ids=BAD_KEYS.keys())
def test_a_bad_idempotency_key_is_refused_before_sending(silent: str, key: str) -> None:
    rule = "idempotency_key must be 1 to 255 printable ASCII characters"
    with Client(silent, timeout=2) as client, pytest.raises(ValueError, match=rule):
        client.trigger("echo-background", idempotency_key=key)

    async def scenario() -> None:
        async with AsyncClient(silent, timeout=2) as client:
            await client.trigger("echo-background", idempotency_key=key)

    with pytest.raises(ValueError, match=rule):
        asyncio.run(scenario())


def test_a_request_that_cannot_be_written_is_not_reported_as_unreachable(silent: str) -> None:
    with Client(silent, timeout=2) as client, pytest.raises(ValueError, match="cannot be sent as given"):
        client.invoke("echo", headers={"x-note": "a\nb"})


class Swallow(Served):
    """A server that reads each request whole and never answers: it holds the connection (``hold``) or drops it."""

    def __init__(self, hold: bool) -> None:
        released = self.released = threading.Event()

        class Handler(Quiet):
            def _swallow(self) -> None:
                self.body()
                if hold:
                    released.wait(60)
                self.close_connection = True

            do_GET = do_POST = _swallow

        super().__init__(Handler)

    def close(self) -> None:
        self.released.set()
        super().close()


SAYS_SENT = ("got the request but no answer came", "may have been carried out", "GET /api/runs", "Idempotency-Key")


@pytest.mark.parametrize("hold", [True, False], ids=["read-timeout", "dropped"])
def test_a_post_without_answer_says_the_run_may_exist(hold: bool) -> None:
    swallow = Swallow(hold)
    try:
        with Client(swallow.url, timeout=1) as client:
            for send in (
                lambda: client.trigger("echo-background", {"a": 1}),
                lambda: client.replay("01JD3Z5W6X7Y8Z9A0B1C2D3E4F"),
                lambda: client.invoke("echo-background", b"{}"),
            ):
                with pytest.raises(Unreachable) as lost:
                    send()
                assert lost.value.sent and all(part in lost.value.message for part in SAYS_SENT), lost.value.message
                assert "Cannot reach" not in lost.value.message
            with pytest.raises(Unreachable) as looked:  # a GET changes nothing: nothing to warn about
                client.get("01JD3Z5W6X7Y8Z9A0B1C2D3E4F")
            assert not looked.value.sent and "Cannot reach" in looked.value.message
        if not hold:  # the CLI at once (a held request would take the CLI's 30 s)
            env = {**os.environ, "BACKBURNER_URL": swallow.url, "COLUMNS": "300"}
            done = subprocess.run(
                [sys.executable, "-m", "backburner", "invoke", "echo-background"],
                env=env, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
            assert all(part in done.stderr for part in SAYS_SENT) and "backburner dev` running" not in done.stderr
    finally:
        swallow.close()
