"""One rule for re-reading the site: an edit applies to the next trigger in every process within 2 s.

The API (limits of new runs) and a running worker (webhook routing) each hold their own snapshot of the
site; both must follow an edit of netlify.toml without a restart.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tests.support.procs import wait_for

from .helpers import finished, trigger

#: DESIGN: any edit applies to the next trigger everywhere within this many seconds.
EDIT_LATENCY_S = 2.0


def edit(path: Path, old: str, new: str) -> None:
    """Rewrite ``path`` and move its time on, so the edit shows even within one clock tick."""
    text = path.read_text()
    assert old in text
    before = path.stat().st_mtime_ns
    path.write_text(text.replace(old, new))
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


def test_an_edit_applies_to_the_next_trigger_in_the_api_and_a_running_worker(
    client, worker, site, hook, webhook_receiver
):
    first = client.post("/api/functions/notify-background/runs", json={}).json()
    assert first["time_limit_s"] == 900  # the background default
    finished(client, first["id"])
    hook.wait_for(1)
    moved = webhook_receiver()

    table = f'[backburner.functions."notify-background"]\n  on_success = ["{hook.url}"]'
    edit(site / "netlify.toml", table, table.replace(hook.url, moved.url) + '\n  time_limit = "7s"')
    edited_at = time.monotonic()

    def api_sees_the_edit() -> dict | None:
        run: dict = client.post("/api/functions/notify-background/runs", json={}).json()
        return run if run["time_limit_s"] == 7 else None

    wait_for(api_sees_the_edit, timeout=EDIT_LATENCY_S, interval=0.1, message="the API to apply the new limit")

    # The worker's routing must have followed too by the deadline: a run triggered then goes to the new URL.
    time.sleep(max(0.0, edited_at + EDIT_LATENCY_S - time.monotonic()))  # the contract's bound is under test
    run_id = trigger(client, "notify-background")
    assert finished(client, run_id)["status"] == "succeeded"
    wait_for(
        lambda: any(json.loads(r.body)["data"]["id"] == run_id for r in moved.requests),
        timeout=10,
        message="the webhook of the run triggered after the edit at the new URL",
    )
    assert all(json.loads(r.body)["data"]["id"] != run_id for r in hook.requests)


def test_a_broken_edit_keeps_the_site_in_force(client, site):
    before = client.get("/api/functions").json()
    edit(site / "netlify.toml", "[functions]", "[functions\n")
    sites = client.app.state.runtime.sites

    def noticed() -> bool:
        client.get("/api/functions")  # a listing looks at the files (at most once a second)
        return sites.error is not None

    wait_for(noticed, timeout=EDIT_LATENCY_S, interval=0.1, message="the API to notice the broken edit")
    assert "netlify.toml" in str(sites.error)
    assert client.get("/api/functions").json() == before
    assert client.post("/api/functions/notify-background/runs", json={}).status_code == 202
