"""A cancel that the handler sees: the run ends cancelled, whatever the handler does next."""

import json

import pytest

from tests.support.procs import wait_for
from tests.support.sites import FUNCTIONS, make_site

STOPS = """
    import json, os, time
    def handler(event, context):
        # Says it started, then checks for a cancel every 10 ms (far more often than its worker does).
        path = json.loads(event["body"])["until"]
        with open(path + ".tmp", "w") as out:
            out.write(str(os.getpid()))
        os.replace(path + ".tmp", path + ".started")
        for step in range(60_000):
            if context.cancelled:
                if event.get("queryStringParameters", {}).get("then") == "raise":
                    raise RuntimeError("stopping")
                return {"stopped_at": step}
            time.sleep(0.01)
        return {"finished": True}
"""


@pytest.fixture
def site(tmp_path):
    return make_site(tmp_path / "site", {**FUNCTIONS, "stops-background": STOPS})


@pytest.mark.parametrize("then", ["return", "raise"])
def test_a_handler_that_stops_on_context_cancelled_ends_its_run_cancelled(client, worker, tmp_path, then):
    """README's pattern (``if context.cancelled: return ...``): the handler sees the cancel before its worker
    does, so its attempt ends on its own; the run is cancelled all the same (not succeeded, not retried), and
    keeps what the handler returned."""
    gate = tmp_path / "never"
    answer = client.post(f"/.netlify/functions/stops-background?then={then}", json={"until": str(gate)})
    run_id = answer.headers["x-nf-request-id"]
    wait_for(lambda: (tmp_path / "never.started").exists(), message="the attempt to start")
    assert client.post(f"/api/runs/{run_id}/cancel").status_code == 200

    def ended():
        run = client.get(f"/api/runs/{run_id}").json()
        return run if run["status"] in ("succeeded", "failed", "cancelled", "retrying") else None

    run = wait_for(ended, message="the run to end")
    assert run["status"] == "cancelled", json.dumps(run)[:500]
    assert [a["outcome"] for a in run["attempts"]] == ["cancelled"]
    assert run["error"]["type"] == "Cancelled"
    if then == "return":
        assert set(run["result"]) == {"stopped_at"}
    else:
        assert run["result"] is None
