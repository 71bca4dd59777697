"""The OpenAPI document describes the API truthfully (the schemathesis run checks the answers against it)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from jobs.lifecycle import new_run
from jobs.runs import RunView


def test_every_operation_documents_its_success_body_and_json_errors(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    undocumented, non_json_errors = [], []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                content = response.get("content") or {}
                if status.startswith(("4", "5")) and path != "/readyz" and list(content) != ["application/json"]:
                    non_json_errors.append((method, path, status, list(content)))
                described = any(c.get("schema") is not None or media == "*/*" for media, c in content.items())
                if status.startswith("2") and status != "204" and not described:
                    undocumented.append((method, path, status))
    assert not undocumented
    assert not non_json_errors


def test_event_streams_are_documented_as_event_streams(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    events = spec["paths"]["/api/runs/{run_id}/events"]["get"]["responses"]["200"]["content"]
    logs = spec["paths"]["/api/runs/{run_id}/logs"]["get"]["responses"]["200"]["content"]
    assert list(events) == ["text/event-stream"]
    assert sorted(logs) == ["application/json", "text/event-stream"]


def test_the_documented_run_is_the_run_the_api_answers(client: TestClient, runtime) -> None:
    run, _ = runtime.store.create(new_run(runtime.site.get("echo-background"), "api"), {})
    answered = client.get(f"/api/runs/{run.id}").json()
    assert set(answered) == set(RunView.model_fields)
    RunView.model_validate(answered)


def test_405_allow_names_every_method_of_the_path(client: TestClient) -> None:
    assert client.options("/api/schedules").headers["allow"] == "GET, HEAD, POST"
    assert client.put("/api/schedules/nightly").headers["allow"] == "DELETE, GET, HEAD"
    assert client.head("/api/runs").status_code == 200  # answered as its GET (api.head)
    replay = client.get("/api/runs/replay")  # a fixed path, not a run id
    assert (replay.status_code, replay.headers["allow"]) == (405, "POST")
