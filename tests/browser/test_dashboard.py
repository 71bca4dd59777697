"""What a person does in the dashboard, in a real browser: log in, watch a run live, download its artifact,
cancel a running run, replay a failed one."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.support.procs import wait_for

from .conftest import TOKEN, api

PROGRESS_VALUE = "() => { const p = document.querySelector('#progress progress'); return p ? p.value : 0 }"


def log_in(page: Any, path: str = "/") -> None:
    page.goto(path)
    page.wait_for_url("**/login?next=**")
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{path}")


def trigger(stack: dict[str, Any], name: str, payload: dict | None = None) -> str:
    response = api(stack, "POST", f"/api/functions/{name}/runs", json=payload or {})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def status_of(page: Any) -> str:
    return str(page.text_content("#status")).strip()


def test_login_form_rejects_a_wrong_token_and_accepts_the_right_one(page):
    page.allowed_errors.append("status of 401")  # the wrong token's answer
    page.goto("/runs")
    page.wait_for_url("**/login?next=/runs")
    page.fill("#token", "not-the-token")
    page.click("button[type=submit]")
    assert "That is not the API token." in page.text_content("[role=alert]")
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url("**/runs")
    assert page.text_content("h1") == "Runs"
    cookies = page.context.cookies()
    session = next(c for c in cookies if c["name"] == "backburner_session")
    assert session["httpOnly"] and session["sameSite"] == "Strict" and TOKEN not in session["value"]


def test_a_run_appears_its_progress_advances_live_and_its_artifact_downloads(page, stack):
    log_in(page, "/runs")
    run_id = trigger(stack, "progress-background", {"steps": 8})
    # The first page of Runs refreshes itself: the new run shows up without a reload.
    page.wait_for_selector(f"a[href='/runs/{run_id}']", timeout=10_000)

    page.click(f"a[href='/runs/{run_id}']")
    page.wait_for_url(f"**/runs/{run_id}")
    seen: list[float] = []
    lines_while_running = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if status_of(page) == "succeeded" or page.url.endswith("notice=") or not page.query_selector("#progress"):
            break
        value = page.evaluate(PROGRESS_VALUE)
        if status_of(page) == "running":
            lines_while_running = max(lines_while_running, len(page.query_selector_all("#log li")))
        if value and (not seen or value != seen[-1]):
            seen.append(value)
        time.sleep(0.1)
    assert len(seen) >= 3 and seen == sorted(seen), seen  # the bar moved forward, several times, on its own
    assert lines_while_running >= 2  # log lines arrived while the run was still running
    page.wait_for_function("() => document.querySelector('#status').textContent.trim() === 'succeeded'")
    page.wait_for_selector("text=report.csv")
    assert page.query_selector_all("#log li")[-1].text_content().endswith("processing batch 8 of 8")
    assert '"batches": 8' in page.text_content("pre.code")

    with page.expect_download() as download_info:
        page.click("a:has-text('report.csv')")
    download = download_info.value
    assert download.suggested_filename == "report.csv"
    content = Path(download.path()).read_text()
    assert content.startswith("batch,rows\n1,10\n") and content.endswith("8,80\n")


def test_cancel_a_running_run(page, stack):
    run_id = trigger(stack, "sleepy-background")
    log_in(page, f"/runs/{run_id}")
    page.wait_for_function("() => document.querySelector('#status').textContent.trim() === 'running'")
    page.wait_for_selector("#log li")  # live lines from the running child
    page.once("dialog", lambda dialog: dialog.accept())
    started = time.monotonic()
    page.click("#cancel")
    page.wait_for_function("() => document.querySelector('#status').textContent.trim() === 'cancelled'", timeout=10_000)
    assert time.monotonic() - started < 5
    page.wait_for_selector("#replay")  # reloaded when the stream ended: a finished run offers Replay
    assert api(stack, "GET", f"/api/runs/{run_id}").json()["status"] == "cancelled"


def test_replay_a_failed_run(page, stack):
    run_id = trigger(stack, "fail-background")
    wait_for(lambda: api(stack, "GET", f"/api/runs/{run_id}").json()["status"] == "failed", message="the failure")
    log_in(page, f"/runs/{run_id}")
    assert status_of(page) == "failed"
    assert "the upstream API answered 500" in page.text_content(".card-bad")
    page.click("summary:has-text('Traceback')")
    assert "fail-background.py" in page.text_content(".attempts pre.code")
    page.click("#replay")
    page.wait_for_url("**?notice=replayed")
    new_id = page.url.split("/runs/")[1].split("?")[0]
    assert new_id != run_id
    assert page.get_attribute(".run-head a.mono", "href") == f"/runs/{run_id}"  # "replay of" the original
    page.wait_for_function("() => document.querySelector('#status').textContent.trim() === 'failed'")
    replayed = api(stack, "GET", f"/api/runs/{new_id}").json()
    assert replayed["trigger"] == "replay" and replayed["replay_of"] == run_id


def test_run_now_with_a_payload_and_pause_a_schedule_from_the_functions_page(page, stack):
    log_in(page, "/functions")
    card = page.locator("#progress-background")
    card.locator("summary:has-text('Run now')").click()
    card.locator("textarea").fill("{not json")
    card.locator("button:has-text('Start run')").click()
    assert "Not valid JSON" in card.locator(".field-error").text_content()  # caught before sending
    card.locator("textarea").fill('{"steps": 1}')
    card.locator("button:has-text('Start run')").click()
    page.wait_for_url("**?notice=started")
    run_id = page.url.split("/runs/")[1].split("?")[0]
    assert api(stack, "GET", f"/api/runs/{run_id}").json()["trigger"] == "api"

    page.goto("/functions")
    tick = page.locator("#tick-background")
    page.once("dialog", lambda dialog: dialog.accept())
    tick.locator("button:has-text('Pause')").click()
    page.wait_for_url("**notice=paused*")
    assert page.locator("#tick-background .pill-paused").count() == 1
    page.locator("#tick-background button:has-text('Resume')").click()
    page.wait_for_url("**notice=resumed*")
    assert page.locator("#tick-background .pill-paused").count() == 0


def test_api_docs_render_offline_from_the_package(page, stack):
    """Swagger UI draws every operation with nothing fetched from another origin, under the page's strict CSP
    (the ``page`` fixture fails the test on any console error, CSP violations included)."""
    elsewhere: list[str] = []

    def only_here(route: Any) -> None:
        if route.request.url.startswith(stack["url"]):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_here)
    page.goto("/api/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=20_000)
    paths = page.eval_on_selector_all(".opblock-summary-path", "nodes => nodes.map(n => n.textContent)")
    assert "/api/functions/{name}/runs" in "".join(paths) and "/api/runs/{run_id}" in "".join(paths)
    assert elsewhere == []
