"""Text a handler hands over (an exception, a progress message, a result) that has no UTF-8 (a lone surrogate):
the run still finishes and is served, never stuck or a 500."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.jobs.test_safety import finished, trigger

FUNCTIONS = {
    "progress-background": 'def handler(event, context):\n    context.progress(1, 2, "half \\ud800 way")\n',
    "raises-background": 'def handler(event, context):\n    raise ValueError("bad \\ud800 thing")\n',
    "prints-background": 'def handler(event, context):\n    print("line \\ud800 x")\n    return 1\n',
    "returns-background": 'def handler(event, context):\n    return {"\\ud800": 1}\n',
}
SYNC = {"raises": 'def handler(event, context):\n    raise ValueError("bad \\ud800 thing")\n'}


@pytest.fixture
def site(site: Path) -> Path:
    for name, source in {**FUNCTIONS, **SYNC}.items():
        (site / "netlify" / "functions" / f"{name}.py").write_text(source)
    with (site / "netlify.toml").open("a") as toml:
        toml.write('\n[backburner.functions."raises-background"]\n  retries = []\n')
    return site


def test_a_lone_surrogate_from_a_handler_is_stored_as_its_escape(client, worker):
    runs = {name: trigger(client, name) for name in FUNCTIONS}

    progress = finished(client, runs["progress-background"], timeout=30)
    assert progress["status"] == "succeeded" and progress["progress"]["message"] == "half \\ud800 way"
    raised = finished(client, runs["raises-background"], timeout=30)
    assert raised["status"] == "failed" and raised["error"]["message"] == "bad \\ud800 thing"
    assert "bad \\ud800 thing" in raised["error"]["traceback"]
    assert raised["attempts"][0]["error"]["message"] == "bad \\ud800 thing"
    assert finished(client, runs["prints-background"], timeout=30)["status"] == "succeeded"
    lines = client.get(f"/api/runs/{runs['prints-background']}/logs").json()["lines"]
    assert [line["line"] for line in lines] == ["line \\ud800 x"]
    returned = finished(client, runs["returns-background"], timeout=30)
    assert returned["status"] == "failed" and "a lone surrogate" in returned["error"]["message"]
    assert client.get("/api/runs", params={"limit": 10}).status_code == 200


def test_a_synchronous_function_raising_with_a_lone_surrogate_gets_its_502(client):
    answer = client.post("/.netlify/functions/raises")
    assert answer.status_code == 502
    assert answer.json()["error"]["message"] == "raises failed: ValueError: bad \\ud800 thing"
