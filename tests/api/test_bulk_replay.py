"""POST /api/runs/replay: every failed run that matches, replayed once (DESIGN.md section 9)."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from jobs import clock
from jobs.runtime import Runtime
from tests.jobs.results.helpers import finished
from tests.support.procs import WorkerProc


def failed_runs(client: TestClient, name: str, count: int) -> list[str]:
    ids = []
    for n in range(count):
        answer = client.post(f"/api/functions/{name}/runs", json={"n": n})
        assert answer.status_code == 202
        ids.append(answer.json()["id"])
    for run_id in ids:
        assert finished(client, run_id)["status"] == "failed"
    return ids


def test_bulk_replay_by_filter_once_each(client: TestClient, runtime: Runtime, worker: WorkerProc) -> None:
    older = failed_runs(client, "permanent-background", 2)
    middle = clock.now()
    newer = failed_runs(client, "permanent-background", 3)
    other = failed_runs(client, "fail-background", 1)  # another function: never selected below

    answer = client.post("/api/runs/replay", json={"function": "permanent-background", "since": clock.iso(middle)})
    assert answer.status_code == 202, answer.text
    replayed = answer.json()["replayed"]
    assert [item["of"] for item in replayed] == newer[::-1]  # newest first
    for item in replayed:
        run = item["run"]
        assert (
            run["trigger"] == "replay" and run["replay_of"] == item["of"] and run["function"] == "permanent-background"
        )
        assert run["idempotency_key"] == f"replay:{item['of']}"
        assert json.loads(runtime.store.event(run["id"])["body"]) == json.loads(runtime.store.event(item["of"])["body"])
        assert client.get(f"/api/runs/{item['of']}").json()["replayed_by"] == run["id"]

    # Before ``middle`` (the replays above are newer, and may have failed again by now).
    body = {"function": "permanent-background", "until": clock.iso(middle), "limit": 1}
    limited = client.post("/api/runs/replay", json=body).json()
    assert [item["of"] for item in limited["replayed"]] == [older[-1]]
    until = client.post("/api/runs/replay", json={"until": clock.iso(middle), "status": "failed"}).json()
    assert [item["of"] for item in until["replayed"]] == [older[0]]  # older[1] was replayed already
    for item in replayed + limited["replayed"] + until["replayed"]:
        finished(client, item["run"]["id"])  # they fail again (NonRetriable), as new failed runs

    everything = {item["of"] for item in client.post("/api/runs/replay", json={}).json()["replayed"]}
    first_replays = {item["run"]["id"] for item in replayed + limited["replayed"] + until["replayed"]}
    assert everything == {other[0], *first_replays}  # the replays failed too; the originals never twice


def test_bulk_replay_refuses_bad_filters(client: TestClient) -> None:
    cases = [
        ({"status": "succeeded"}, "status"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"since": 1767225600}, "since"),  # a number is no time
        ({"colour": "red"}, "colour"),
        ({"function": "no/slash"}, "function"),
    ]
    for body, words in cases:
        answer = client.post("/api/runs/replay", json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert words in answer.json()["error"]["message"]
    bad_time = client.post("/api/runs/replay", json={"since": "last week"})
    assert bad_time.status_code == 400 and "since must be an ISO 8601 time" in bad_time.json()["error"]["message"]
    assert client.post("/api/runs/replay", json={"status": "cancelled"}).json() == {"replayed": []}
    unknown = client.post("/api/runs/replay", json={"function": "echo-backgruond"})  # misspelt: not "nothing to do"
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "function_not_found"
    assert "echo-backgruond" in unknown.json()["error"]["message"]
    form = {"content-type": "application/x-www-form-urlencoded"}  # what `curl -d` sends
    as_form = client.post("/api/runs/replay", content=b'{"status": "failed"}', headers=form)
    assert as_form.status_code == 422
    assert "content-type: application/json" in as_form.json()["error"]["message"]
    assert "application/x-www-form-urlencoded" in as_form.json()["error"]["message"]
    json_type = {"content-type": "application/json"}
    broken = client.post("/api/runs/replay", content=b"{", headers=json_type)  # not JSON at all: 400, saying where
    assert broken.status_code == 400 and broken.json()["error"]["message"] == (
        "The body is not valid JSON: Expecting property name enclosed in double quotes at line 1, column 2."
    )  # as a function's payload says it (api.body), rather than a character offset
    two_lines = client.post("/api/runs/replay", content=b'{\n  "status": }', headers=json_type)
    assert two_lines.json()["error"]["message"].endswith("at line 2, column 13.")
    missing = client.post("/api/runs/replay", headers=json_type)
    for path in ("/api/runs?limit=abc&limit=1", "/api/schedules?count=abc&count=1", "/api/runs?status=x&status=failed"):
        twice = client.get(path)  # FastAPI would keep the last value and never see the bad first one
        assert twice.status_code == 400 and "is given 2 times; give it once" in twice.json()["error"]["message"], path
    assert (
        missing.status_code == 422 and missing.json()["error"]["message"] == "the body is missing: send a JSON object"
    )


def test_other_methods_on_the_bulk_replay_path_are_405(client: TestClient) -> None:
    for method in ("GET", "PUT", "DELETE"):
        answer = client.request(method, "/api/runs/replay")
        assert answer.status_code == 405 and answer.headers["allow"] == "POST", (method, answer.text)
        assert answer.json()["error"]["code"] == "method_not_allowed"
