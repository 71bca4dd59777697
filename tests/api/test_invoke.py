"""Netlify invocation URLs and the management API against a real Redis (no worker needed)."""

import json

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from jobs.errors import ConfigError


def test_sync_function_answers_with_its_response(client):
    response = client.get("/.netlify/functions/hello")
    assert response.status_code == 200
    assert response.json() == {"hello": "world", "method": "GET"}
    assert response.headers["x-nf-request-id"]


@pytest.mark.parametrize("method", ["PUT", "PROPFIND", "TRACE"])
def test_any_method_and_subpath_reach_the_function_with_the_v1_event(client, method):
    response = client.request(
        method,
        "/.netlify/functions/echo/a/b?x=1&x=2",
        content=b"\x00\x01",
        headers={"content-type": "application/octet-stream", "x-k": "v"},
    )
    event = json.loads(response.text)
    assert event["httpMethod"] == method
    assert event["path"] == "/.netlify/functions/echo/a/b"
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"]}
    assert event["isBase64Encoded"] is True and event["body"] == "AAE="
    assert event["headers"]["x-k"] == "v"


def test_the_events_path_and_raw_url_keep_the_callers_escapes(client):
    """As Netlify's: ``%2F`` is no slash and ``%3F`` no query; what a URL cannot hold as sent is escaped."""
    event = client.get("/.netlify/functions/echo/a%20b%2Fc%3Fd/caf%C3%A9?q=1").json()
    assert event["path"] == "/.netlify/functions/echo/a%20b%2Fc%3Fd/caf%C3%A9"
    assert event["rawUrl"] == "http://localhost/.netlify/functions/echo/a%20b%2Fc%3Fd/caf%C3%A9?q=1"


def test_a_scheduled_function_answers_no_url_outside_dev_as_on_netlify(tmp_path, settings, caplog):
    """Outside dev a 404 says how to run it now; in dev it runs, with netlify dev's note in the log. A scheduled
    background function keeps its URL (its 202 is the run)."""
    from tests.support.sites import make_site

    source = "def handler(event, context):\n    return {'statusCode': 200, 'body': 'ticked'}\n"
    toml = '[functions]\n  directory = "netlify/functions"\n[functions.tick]\n  schedule = "@daily"\n'
    toml += '[functions."tick-background"]\n  schedule = "@daily"\n'
    site = make_site(tmp_path / "s", {"tick": source, "tick-background": source}, toml)
    token = "t" * 32
    secure = settings.model_copy(update={"site": site, "dev": False, "api_token": token})
    with TestClient(create_app(secure), base_url="http://localhost") as client:
        answer = client.post("/.netlify/functions/tick")
        assert answer.status_code == 404
        message = answer.json()["error"]["message"]
        assert message.startswith("tick is a scheduled function, which answers no URL (as on Netlify)"), message
        assert "backburner schedules trigger tick" in message
        assert client.post("/.netlify/functions/tick-background").status_code == 202
    with TestClient(create_app(settings.model_copy(update={"site": site})), base_url="http://localhost") as client:
        with caplog.at_level("WARNING", logger="backburner.api"):
            answer = client.post("/.netlify/functions/tick")
        assert (answer.status_code, answer.text) == (200, "ticked")
        said = [r.getMessage() for r in caplog.records]
        assert any("tick is a scheduled function: it answers its URL in dev only" in m for m in said), said


def test_background_function_answers_202_empty_with_run_headers(client, runtime):
    response = client.post("/.netlify/functions/echo-background", json={"a": 1})
    assert response.status_code == 202
    assert response.content == b""
    run_id = response.headers["x-nf-request-id"]
    assert response.headers["location"] == f"/api/runs/{run_id}"
    run = client.get(f"/api/runs/{run_id}").json()
    assert run["status"] == "queued" and run["trigger"] == "http" and run["max_attempts"] == 3
    assert run["retry_delays_s"] == [1.0, 2.0] and run["time_limit_s"] == 900
    assert "token" not in run
    # The record and its message landed together.
    assert runtime.client.hexists(runtime.broker.queue_keys()[1], runtime.store.get(run_id).message_id)


def test_unknown_function_is_404_json(client):
    response = client.post("/.netlify/functions/nope")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "function_not_found", "message": "No function named 'nope' in this site."}
    }


def test_background_body_over_256kb_is_413(client):
    response = client.post("/.netlify/functions/echo-background", content=b"x" * (256 * 1024 + 1))
    assert response.status_code == 413
    message = response.json()["error"]["message"]
    assert "echo-background" in message and "262144 bytes" in message
    assert client.post("/.netlify/functions/echo-background", content=b"x" * (256 * 1024)).status_code == 202


def test_sync_body_over_6mb_is_413(client):
    response = client.post("/.netlify/functions/echo", content=b"x" * (6 * 1024 * 1024 + 1))
    assert response.status_code == 413
    assert "6291456 bytes" in response.json()["error"]["message"]


def test_idempotency_key_returns_the_same_run(client):
    headers = {"Idempotency-Key": "order-42"}
    first = client.post("/.netlify/functions/echo-background", headers=headers, json={"n": 1})
    second = client.post("/.netlify/functions/echo-background", headers=headers, json={"n": 1})
    other = client.post("/.netlify/functions/echo-background", headers={"Idempotency-Key": "order-43"})
    assert first.headers["x-nf-request-id"] == second.headers["x-nf-request-id"]
    assert other.headers["x-nf-request-id"] != first.headers["x-nf-request-id"]
    runs = client.get("/api/runs", params={"function": "echo-background"}).json()["runs"]
    assert len(runs) == 2


def test_redis_down_gives_503_not_500_and_the_api_says_so_at_start(settings, site, caplog):
    down = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    with (
        caplog.at_level("WARNING", logger="backburner.api"),
        TestClient(create_app(down), base_url="http://localhost") as client,
    ):
        assert "Redis at 127.0.0.1:1 does not answer" in caplog.text and "503" in caplog.text
        response = client.post("/.netlify/functions/echo-background", json={})
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "store_unavailable"
        assert response.headers["retry-after"]


def test_invalid_sync_response_is_502_with_netlify_message(tmp_path, settings, caplog):
    from tests.support.sites import make_site

    site = make_site(
        tmp_path / "s",
        {
            "bad": "def handler(event, context):\n    return {'body': 'no status'}\n",
            "boom": "def handler(event, context):\n    raise ValueError('nope')\n",
            "keeper": "def handler(event, context):\n    context.artifacts.write('a.csv', 'a\\n')\n",
        },
    )
    with TestClient(create_app(settings.model_copy(update={"site": site})), base_url="http://localhost") as client:
        response = client.get("/.netlify/functions/bad")
        assert response.status_code == 502
        assert "numerical statusCode" in response.json()["error"]["message"]
        with caplog.at_level("WARNING", logger="backburner.api"):
            response = client.get("/.netlify/functions/boom")
        assert response.status_code == 502
        assert response.json()["error"]["message"] == "boom failed: ValueError: nope"
        assert "Traceback" not in response.text
        # The caller sees the error; the API's log has its traceback, the one place a synchronous call keeps it.
        logged = [r.getMessage() for r in caplog.records if r.name == "backburner.api"]
        assert any("boom failed: ValueError: nope" in m and 'boom.py", line 2, in handler' in m for m in logged), logged
        response = client.get("/.netlify/functions/keeper")
        assert response.status_code == 502
        message = response.json()["error"]["message"]
        assert "keeper is a synchronous function" in message and "keeper-background" in message, message


RESPONSES = {
    "b64-unpadded": {"statusCode": 200, "body": "aGk", "isBase64Encoded": True},
    "b64-bad": {"statusCode": 200, "body": "a!b", "isBase64Encoded": True},
    "status-text": {"statusCode": "201", "body": "made"},
    "status-float": {"statusCode": 202.0},
    "status-word": {"statusCode": "ok"},
    "headers-list": {"statusCode": 200, "headers": [["a", "b"]]},
    "header-crlf": {"statusCode": 200, "headers": {"x-a": "a\r\nx-injected: 1"}},
    "header-name": {"statusCode": 200, "headers": {"x a": "b"}},
    "header-unicode": {"statusCode": 200, "headers": {"x-a": "\u2713"}},
    "multi": {"statusCode": 200, "headers": {"x-a": "one", "x-b": "b"}, "multiValueHeaders": {"x-a": ["1", "2"]}},
    "multi-string": {"statusCode": 200, "multiValueHeaders": {"x-a": "one"}},
    "own-length": {"statusCode": 200, "body": "abc", "headers": {"content-length": "99", "x-nf-request-id": "mine"}},
}


@pytest.fixture
def responder(tmp_path, settings):
    """A client of a site whose function ``r`` returns the response ``RESPONSES`` names in its query."""
    from tests.support.sites import make_site

    source = f"RESPONSES = {RESPONSES!r}\ndef handler(event, context):\n    return RESPONSES[event['rawQuery']]\n"
    site = make_site(tmp_path / "s", {"r": source})
    with TestClient(create_app(settings.model_copy(update={"site": site})), base_url="http://localhost") as client:
        yield client


def test_responses_read_as_netlify_dev_reads_them(responder):
    """Lenient where ``netlify dev`` is: numeric statuses in any form, unpadded base64, ``multiValueHeaders``
    replacing the same header, a string in it one value; the body sets its own length."""
    answer = responder.get("/.netlify/functions/r?b64-unpadded")
    assert (answer.status_code, answer.content) == (200, b"hi")
    answer = responder.get("/.netlify/functions/r?status-text")
    assert (answer.status_code, answer.text) == (201, "made")
    assert responder.get("/.netlify/functions/r?status-float").status_code == 202
    answer = responder.get("/.netlify/functions/r?multi")
    assert answer.headers.get_list("x-a") == ["1", "2"] and answer.headers["x-b"] == "b"
    assert responder.get("/.netlify/functions/r?multi-string").headers.get_list("x-a") == ["one"]
    answer = responder.get("/.netlify/functions/r?own-length")
    assert (answer.text, answer.headers.get_list("content-length")) == ("abc", ["3"])
    assert answer.headers.get_list("x-nf-request-id") == ["mine"]


@pytest.mark.parametrize(
    ("case", "said"),
    [
        ("b64-bad", "r returned a body marked isBase64Encoded that is not base64"),
        ("status-word", "Your function response must have a numerical statusCode. You gave: 'ok'"),
        ("headers-list", "r returned headers as a list; it must map header names to values"),
        ("header-crlf", "r returned header 'x-a' with a line break, control or non-Latin-1 character"),
        ("header-name", "r returned a header named 'x a', which is not a valid header name"),
        ("header-unicode", "r returned header 'x-a' with a line break, control or non-Latin-1 character"),
    ],
)
def test_a_response_no_http_answer_can_carry_is_a_502_that_says_why(responder, case, said):
    answer = responder.get(f"/.netlify/functions/r?{case}")
    assert answer.status_code == 502, answer.text
    assert answer.json()["error"] == {"code": "invalid_response", "message": said}
    assert answer.headers["x-nf-request-id"]


def test_outside_dev_a_failing_synchronous_function_names_its_exception_but_keeps_its_text_in_the_log(
    tmp_path, settings, caplog
):
    """Its callers are anyone on the web: an exception's text may hold an internal host, a user name, a DSN."""
    from tests.support.sites import make_site

    site = make_site(
        tmp_path / "s",
        {
            "boom": "def handler(event, context):\n    raise ConnectionError('cannot reach db.internal as admin')\n",
            "bad": "def handler(event, context):\n    return {'body': 'no status'}\n",
        },
    )
    production = settings.model_copy(update={"site": site, "dev": False, "api_token": "a-token-of-twenty-chars"})
    with TestClient(create_app(production), base_url="http://localhost") as client:
        with caplog.at_level("WARNING", logger="backburner.api"):
            response = client.get("/.netlify/functions/boom")
        assert response.status_code == 502 and response.json()["error"]["code"] == "function_error"
        message = response.json()["error"]["message"]
        request_id = response.headers["x-nf-request-id"]
        assert message == f"boom failed: ConnectionError (its message is in the API's log, request {request_id})"
        logged = [r.getMessage() for r in caplog.records if r.name == "backburner.api"]
        assert any("cannot reach db.internal as admin" in m and request_id in m for m in logged), logged
        # Backburner's own messages about a bad answer say no more than the function's code does: they stay.
        assert "numerical statusCode" in client.get("/.netlify/functions/bad").json()["error"]["message"]


def test_a_function_added_with_an_edit_that_does_not_load_gets_a_404_that_says_why(tmp_path, settings):
    """The site in force stays the last one that loaded; a 404 for a function that came with the broken edit
    says so, instead of only "No function named"."""
    from tests.support.procs import wait_for
    from tests.support.sites import make_site

    site = make_site(tmp_path / "s", {"real": "def handler(event, context):\n    return {'statusCode': 200}\n"})
    with TestClient(create_app(settings.model_copy(update={"site": site})), base_url="http://localhost") as client:
        assert client.get("/.netlify/functions/real").status_code == 200
        folder = site / "netlify" / "functions"
        (folder / "fresh.py").write_text("def handler(event, context):\n    return {'statusCode': 200}\n")
        (folder / "broken.py").write_text("def handler(event, context)\n    pass\n")

        def said(url: str) -> str:
            return client.get(url).json()["error"]["message"]

        message = wait_for(lambda: "does not load" in (m := said("/.netlify/functions/fresh")) and m, timeout=10)
        assert "No function named 'fresh'" in message and "broken.py:1" in message, message
        assert "the last version that did is served" in message
        answer = client.post("/api/functions/fresh/runs", json={})
        assert answer.status_code == 404 and "broken.py:1" in answer.json()["error"]["message"]
        assert client.get("/.netlify/functions/real").status_code == 200  # the site in force still serves


def test_trigger_through_the_management_api(client):
    response = client.post("/api/functions/echo-background/runs", json={"k": "v"})
    assert response.status_code == 202
    run = response.json()
    assert run["trigger"] == "api" and run["status"] == "queued"
    assert response.headers["location"] == f"/api/runs/{run['id']}"


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b"{not json", "is not valid JSON: Expecting property name enclosed in double quotes at line 1, column 2."),
        (b"\xef\xbb\xbf{}", "starts with a byte-order mark (EF BB BF): send JSON without one."),
        (b'{"n": ' + b"9" * 5000 + b"}", "holds a number with more than 4300 digits; send it as a string."),
    ],
)
def test_malformed_payload_is_a_clear_400(client, body, said):
    response = client.post("/api/functions/echo-background/runs", content=body)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_input"
    assert response.json()["error"]["message"] == f"The payload {said}"  # never Python's own advice


def test_bad_query_parameters_are_422_json(client):
    response = client.get("/api/runs", params={"status": "exploded", "limit": 0})
    assert response.status_code == 422
    assert "status" in response.json()["error"]["message"]


def test_unknown_run_is_404(client):
    assert client.get("/api/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV").json()["error"]["code"] == "run_not_found"
    assert client.get("/api/runs/NOPE").json()["error"]["code"] == "run_not_found"


def test_runs_are_listed_newest_first_with_a_cursor(client):
    ids = [client.post("/.netlify/functions/echo-background").headers["x-nf-request-id"] for _ in range(5)]
    page = client.get("/api/runs", params={"limit": 3}).json()
    assert [r["id"] for r in page["runs"]] == ids[::-1][:3]
    rest = client.get("/api/runs", params={"limit": 3, "cursor": page["next_cursor"]}).json()
    assert [r["id"] for r in rest["runs"]] == ids[::-1][3:]


def test_runs_are_listed_by_creation_time_with_since_and_until(client, runtime):
    from jobs.lifecycle import new_run

    function = runtime.site.get("echo-background")
    made = {}
    for moment in ("2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z", "2026-01-01T12:00:00Z"):
        run = new_run(function, "api")
        run.id = id_at(moment)
        runtime.store.create(run, {})
        made[moment] = run.id

    def listed(**params):
        runs = client.get("/api/runs", params={"function": "echo-background", **params}).json()["runs"]
        return [run["id"] for run in runs]

    assert listed(since="2026-01-01T11:00:00Z") == [made["2026-01-01T12:00:00Z"], made["2026-01-01T11:00:00Z"]]
    assert listed(until="2026-01-01T11:00:00Z") == [made["2026-01-01T10:00:00Z"]]  # until is exclusive
    assert listed(since="2026-01-01T10:30:00", until="2026-01-01T12:00:00+00:00") == [made["2026-01-01T11:00:00Z"]]
    page = client.get("/api/runs", params={"function": "echo-background", "until": "2026-01-01T13:00:00Z", "limit": 1})
    rest = listed(until="2026-01-01T13:00:00Z", cursor=page.json()["next_cursor"])
    assert rest == [made["2026-01-01T11:00:00Z"], made["2026-01-01T10:00:00Z"]]
    bad = client.get("/api/runs", params={"since": "yesterday"})
    assert bad.status_code == 400 and "since must be an ISO 8601 time" in bad.text


def id_at(moment: str) -> str:
    """A run id (ULID) made at ``moment``."""
    from datetime import datetime

    from jobs.runs import id_floor, new_id

    return id_floor(int(datetime.fromisoformat(moment).timestamp() * 1000)) + new_id()[10:]


def test_outside_dev_the_api_needs_a_token(settings):
    with pytest.raises(ConfigError, match="BACKBURNER_API_TOKEN"):
        create_app(settings.model_copy(update={"dev": False}))
    secured = settings.model_copy(update={"dev": False, "api_token": "s3cret-0123456789abcdef"})
    with TestClient(create_app(secured)) as client:
        assert client.get("/api/runs").status_code == 401
        assert client.get("/api/runs", headers={"authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/api/runs", headers={"authorization": "Bearer s3cret-0123456789abcdef"}).status_code == 200
        # Function URLs stay public, as on Netlify.
        assert client.post("/.netlify/functions/echo-background").status_code == 202


def test_cancel_a_queued_run_and_replay_it(client):
    run_id = client.post("/.netlify/functions/echo-background", json={"x": 1}).headers["x-nf-request-id"]
    cancelled = client.post(f"/api/runs/{run_id}/cancel").json()
    assert cancelled["status"] == "cancelled"
    assert client.post(f"/api/runs/{run_id}/cancel").status_code == 409
    replay = client.post(f"/api/runs/{run_id}/replay")
    assert replay.status_code == 202
    assert replay.json()["replay_of"] == run_id and replay.json()["trigger"] == "replay"


def test_replay_with_an_edited_payload(client, runtime):
    run_id = client.post("/.netlify/functions/echo-background", json={"day": "bad"}).headers["x-nf-request-id"]
    same = client.post(f"/api/runs/{run_id}/replay").json()
    assert runtime.store.event(same["id"]) == runtime.store.event(run_id)
    edited = client.post(f"/api/runs/{run_id}/replay", json={"day": "2026-11-27"})
    assert edited.status_code == 202 and edited.json()["replay_of"] == run_id
    assert json.loads(runtime.store.event(edited.json()["id"])["body"]) == {"day": "2026-11-27"}
    bad = client.post(f"/api/runs/{run_id}/replay", content=b"{nope", headers={"content-type": "application/json"})
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]["message"]
    huge = client.post(f"/api/runs/{run_id}/replay", json={"x": "y" * 300_000})
    assert huge.status_code == 413
    assert client.post("/api/runs/NOPE/replay", json={}).status_code == 404
