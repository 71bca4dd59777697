"""The dashboard through the app: login, sessions, CSRF on every action, and pages over thousands of runs."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.sessions import COOKIE, Sessions
from jobs.lifecycle import new_run
from jobs.runs import ArtifactRef
from jobs.settings import Settings
from tests.support.history import seed_runs
from tests.support.sites import FUNCTIONS, TOML, make_site

TOKEN = "dashboard-test-token-0123456789"
SCHEDULED = """
    def handler(event, context):
        return {"ok": True}
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    toml = TOML + '\n[functions."tick-background"]\n  schedule = "@hourly"\n'
    toml += '\n[backburner.functions."tick-background"]\n  on_success = ["https://hooks.example.com/ticked"]\n'
    return make_site(tmp_path / "site", {**FUNCTIONS, "tick-background": SCHEDULED}, toml)


@pytest.fixture
def secure(settings: Settings) -> Iterator[TestClient]:
    """The app as deployed: not dev, with an API token."""
    from api.app import create_app

    app = create_app(settings.model_copy(update={"dev": False, "api_token": TOKEN}))
    with TestClient(app, follow_redirects=False) as client:
        yield client


def csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def login(client: TestClient, token: str = TOKEN, next_path: str = "/") -> str:
    """Log in through the form; returns the CSRF token of the new session (from the overview page)."""
    page = client.get(f"/login?next={next_path}")
    assert page.status_code == 200
    response = client.post("/login", data={"token": token, "next": next_path, "csrf": csrf(page.text)})
    assert response.status_code == 303, response.text
    return csrf(client.get("/").text)


def queued_run(runtime, name: str = "sleepy-background") -> str:
    run, _ = runtime.store.create(new_run(runtime.site.get(name), "api"), {"body": "{}"})
    return run.id


def test_pages_redirect_to_login_and_the_form_sets_a_strict_http_only_cookie(secure):
    response = secure.get("/runs?status=failed", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/runs%3Fstatus%3Dfailed"
    page = secure.get("/login?next=/runs")
    assert "API token" in page.text and page.headers["x-frame-options"] == "DENY"
    wrong = secure.post("/login", data={"token": "nope", "next": "/runs", "csrf": csrf(page.text)})
    assert wrong.status_code == 401 and "not the API token" in wrong.text
    page = secure.get("/login?next=/runs")
    response = secure.post("/login", data={"token": TOKEN, "next": "/runs", "csrf": csrf(page.text)})
    assert response.status_code == 303 and response.headers["location"] == "/runs"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain HTTP here; see the HTTPS test
    assert TOKEN not in cookie  # the token itself never goes into a cookie
    assert secure.get("/runs").status_code == 200


def test_cookie_is_secure_over_https_and_next_cannot_leave_the_site(settings):
    from api.app import create_app

    app = create_app(settings.model_copy(update={"dev": False, "api_token": TOKEN}))
    with TestClient(app, base_url="https://dash.example", follow_redirects=False) as client:
        page = client.get("/login")
        response = client.post("/login", data={"token": TOKEN, "next": "//evil.example/x", "csrf": csrf(page.text)})
        assert response.status_code == 303 and response.headers["location"] == "/"
        assert "Secure" in response.headers["set-cookie"]


def test_login_form_itself_needs_its_csrf_token(secure):
    secure.get("/login")
    response = secure.post("/login", data={"token": TOKEN, "next": "/"})
    assert response.status_code == 403
    assert secure.get("/", follow_redirects=False).status_code == 303


def test_forged_or_foreign_session_cookies_are_refused(secure, settings):
    login(secure)
    good = secure.cookies[COOKIE]
    assert good.startswith("s1.") and len(good) == 46  # only a random id: the session lives in Redis
    tampered = good[:-1] + ("A" if good[-1] != "A" else "B")
    for forged in (tampered, "s1." + "x" * 43, "s1.../../x", "v1.1.1.x.y", good + "x"):
        secure.cookies.clear()
        secure.cookies.set(COOKIE, forged)
        assert secure.get("/", follow_redirects=False).status_code == 303
        assert secure.get("/api/runs").status_code == 401
    _, anonymous = Sessions(b"another key").anonymous()  # signed, but by another deployment, and never logged in
    secure.cookies.clear()
    secure.cookies.set(COOKIE, anonymous)
    assert secure.get("/api/runs").status_code == 401


def test_anonymous_sessions_expire():
    sessions = Sessions(b"k" * 32, ttl_s=-1)
    _, cookie = sessions.anonymous()
    assert asyncio.run(sessions.read(cookie)) is None
    assert asyncio.run(Sessions(b"k" * 32).read(cookie)) is not None


def test_logged_in_sessions_live_in_redis_for_12_hours_under_a_hash(secure, runtime):
    login(secure)
    sid = secure.cookies[COOKIE][3:]
    key = runtime.store.keys.session(hashlib.sha256(sid.encode()).hexdigest())
    assert 11 * 3600 < runtime.client.ttl(key) <= 12 * 3600
    assert sid.encode() not in runtime.client.get(key)  # Redis never holds a usable cookie


def test_every_dashboard_action_needs_the_sessions_csrf_token(secure, runtime):
    token = login(secure)
    run_id = queued_run(runtime)
    actions = [
        f"/runs/{run_id}/cancel",
        f"/runs/{run_id}/replay",
        "/functions/echo-background/run",
        "/functions/tick-background/pause",
        "/functions/tick-background/resume",
        "/functions/tick-background/trigger",
        "/functions/tick-background/webhooks/enable",
    ]
    for path in actions:
        assert secure.post(path, data={}).status_code == 403, path
        assert secure.post(path, data={"csrf": token + "x"}).status_code == 403, path
        assert secure.post(path, data={"csrf": token}, headers={"origin": "https://evil.example"}).status_code == 403
        assert secure.post(path, data={"csrf": token}, headers={"sec-fetch-site": "cross-site"}).status_code == 403
    assert runtime.store.get(run_id).status == "queued"
    assert len(runtime.store.runs()[0]) == 1  # nothing replayed, run or triggered
    response = secure.post(f"/runs/{run_id}/cancel", data={"csrf": token}, headers={"origin": "http://testserver"})
    assert response.status_code == 303 and response.headers["location"] == f"/runs/{run_id}?notice=cancelled"
    assert runtime.store.get(run_id).status == "cancelled"
    assert "Run cancelled." in secure.get(response.headers["location"]).text


def test_actions_start_pause_resume_and_replay(secure, runtime):
    token = login(secure)
    started = secure.post("/functions/echo-background/run", data={"csrf": token, "payload": '{"n": 7}'})
    assert started.status_code == 303
    run_id = started.headers["location"].split("/")[2].split("?")[0]
    assert runtime.store.get(run_id).trigger == "api"
    assert "&#34;n&#34;: 7" in secure.get(f"/runs/{run_id}").text  # the payload is shown on the run page
    bad = secure.post("/functions/echo-background/run", data={"csrf": token, "payload": "{nope"})
    assert bad.status_code == 422 and "Payload is not JSON" in bad.text
    assert secure.post("/functions/tick-background/pause", data={"csrf": token}).status_code == 303
    assert "paused" in secure.get("/functions").text
    status = runtime.client.hget(runtime.store.keys.schedule("tick-background"), "paused")
    assert status == b"1"
    assert secure.post("/functions/tick-background/resume", data={"csrf": token}).status_code == 303
    assert runtime.client.hget(runtime.store.keys.schedule("tick-background"), "paused") == b"0"
    triggered = secure.post("/functions/tick-background/trigger", data={"csrf": token})
    assert runtime.store.get(triggered.headers["location"].split("/")[2].split("?")[0]).trigger == "schedule"
    runtime.lifecycle.cancel(run_id)
    replayed = secure.post(f"/runs/{run_id}/replay", data={"csrf": token})
    new_id = replayed.headers["location"].split("/")[2].split("?")[0]
    assert runtime.store.get(new_id).replay_of == run_id
    assert secure.post("/functions/echo-background/explode", data={"csrf": token}).status_code == 404
    assert secure.post("/runs/NOPE/cancel", data={"csrf": token}).status_code == 404


def test_a_webhook_disabled_by_a_410_shows_and_can_be_re_enabled(secure, runtime):
    token = login(secure)
    gone = runtime.store.keys.webhooks_gone("tick-background")
    assert "Re-enable" not in secure.get("/functions").text
    runtime.client.sadd(gone, "https://hooks.example.com/ticked")
    page = secure.get("/functions").text
    assert "disabled" in page and 'value="https://hooks.example.com/ticked"' in page
    data = {"csrf": token, "url": "https://hooks.example.com/ticked"}
    response = secure.post("/functions/tick-background/webhooks/enable", data=data)
    assert response.status_code == 303 and "notice=webhook-enabled" in response.headers["location"]
    assert not runtime.client.sismember(gone, "https://hooks.example.com/ticked")
    assert "Webhook re-enabled" in secure.get(response.headers["location"]).text
    again = secure.post("/functions/tick-background/webhooks/enable", data=data)
    assert again.status_code == 409 and "not a disabled webhook" in again.text


def test_replay_with_an_edited_payload_from_the_run_page(secure, runtime):
    token = login(secure)
    run, _ = runtime.store.create(new_run(runtime.site.get("echo-background"), "api"), {"body": '{"day": "bad"}'})
    runtime.lifecycle.cancel(run.id)
    page = secure.get(f"/runs/{run.id}").text
    assert "Replay with" in page and "&#34;day&#34;: &#34;bad&#34;" in page  # the form starts from the old payload
    edited = secure.post(f"/runs/{run.id}/replay", data={"csrf": token, "payload": '{"day": "2026-11-27"}'})
    assert edited.status_code == 303 and edited.headers["location"].endswith("?notice=replayed-edited")
    new_id = edited.headers["location"].split("/")[2].split("?")[0]
    assert runtime.store.get(new_id).replay_of == run.id
    assert runtime.store.event(new_id)["body"] == '{"day": "2026-11-27"}'
    bad = secure.post(f"/runs/{run.id}/replay", data={"csrf": token, "payload": "{nope"})
    assert bad.status_code == 422 and "Payload is not JSON" in bad.text and f"/runs/{run.id}" in bad.text


def test_json_api_with_the_session_cookie_needs_the_csrf_header_to_change_things(secure, runtime):
    token = login(secure)
    run_id = queued_run(runtime)
    assert secure.get("/api/runs").status_code == 200  # reading with the cookie is fine
    assert secure.post(f"/api/runs/{run_id}/cancel").status_code == 403
    assert secure.post(f"/api/runs/{run_id}/cancel", headers={"x-csrf-token": token}).status_code == 200
    secure.cookies.clear()  # a script with the token needs no CSRF token
    cancelled = secure.post(f"/api/runs/{queued_run(runtime)}/cancel", headers={"authorization": f"Bearer {TOKEN}"})
    assert cancelled.json()["status"] == "cancelled"


def test_logout_ends_the_session(secure):
    token = login(secure)
    assert secure.post("/logout", data={"csrf": token}).status_code == 303
    assert secure.get("/", follow_redirects=False).status_code == 303


def test_dev_mode_needs_no_login_but_still_checks_csrf(client, runtime):
    page = client.get("/functions")
    assert page.status_code == 200 and "echo-background" in page.text
    assert client.get("/login", follow_redirects=False).headers["location"] == "/"
    run_id = queued_run(runtime)
    assert client.post(f"/runs/{run_id}/cancel", data={}).status_code == 403
    done = client.post(f"/runs/{run_id}/cancel", data={"csrf": csrf(page.text)}, follow_redirects=False)
    assert done.status_code == 303 and runtime.store.get(run_id).status == "cancelled"
    cross_site = {"sec-fetch-site": "cross-site"}
    assert client.post(f"/api/runs/{queued_run(runtime)}/cancel", headers=cross_site).status_code == 403


def test_pages_render_and_paginate_with_thousands_of_runs(client, runtime):
    ids = seed_runs(runtime, 3000, profiles={"echo-background": (2.0, 0.1), "fail-background": (0.5, 0.5)})
    overview = client.get("/")
    assert overview.status_code == 200
    assert "Runs per hour" in overview.text and overview.text.count('class="s-succeeded"') > 10
    assert "echo-background" in overview.text and "p99" in overview.text
    assert client.get("/functions").status_code == 200
    seen: list[str] = []
    url = "/runs"
    for _ in range(3):
        page = client.get(url)
        assert page.status_code == 200
        seen += re.findall(r'<a class="mono" href="/runs/([0-9A-Z]{26})">', page.text)
        url = re.search(r'href="(/runs\?[^"]*cursor=[0-9A-Z]+)"', page.text).group(1).replace("&amp;", "&")
    assert seen == ids[:150]  # newest first, 50 per page, no gaps or repeats
    failed = client.get("/runs?status=failed&function=fail-background")
    assert failed.status_code == 200 and 'class="badge s-succeeded"' not in failed.text
    assert "s-failed" in failed.text
    recent = client.get("/runs?range=1h")
    older = client.get("/runs?to=2000-01-01T00:00")
    assert recent.status_code == 200 and "No runs match" in older.text
    rows = client.get("/runs?partial=1&function=echo-background")
    assert rows.text.lstrip().startswith("<tr") and "<html" not in rows.text
    assert client.get(f"/runs/{ids[-1]}").status_code == 200
    assert client.get("/runs?status=bogus").status_code == 400
    assert client.get("/runs/NOPE").status_code == 404
    assert "Not found" in client.get("/runs/NOPE").text


def test_static_assets_ship_with_the_package_and_pages_forbid_outside_sources(client):
    page = client.get("/")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    for asset in re.findall(r'(?:href|src)="(/static/[^"]+)"', page.text):
        assert client.get(asset).status_code == 200, asset
    assert "http://" not in page.text and "https://" not in page.text


def test_run_page_shows_attempts_result_artifacts_and_webhook_deliveries(client, runtime):
    run_id = queued_run(runtime, "echo-background")

    def finish(run, pipe):
        run.status, run.result = "succeeded", {"rows": 3}
        run.artifacts = [ArtifactRef(name="out/report.csv", size=2048, content_type="text/csv", url="/x")]
        run.deliveries = [
            {"url": "https://hooks.example/a", "webhook_id": "msg_1", "attempt": 1, "at": run.created_at,
             "status": 200, "ok": True, "error": None, "duration_ms": 12.5, "event": "run.succeeded",
             "outcome": "delivered", "retry_after_s": None, "gone": False, "next_attempt_at": None},
        ]  # fmt: skip

    runtime.store.update(run_id, finish)
    page = client.get(f"/runs/{run_id}").text.replace("<wbr>", "")  # line-break hints in long names
    assert "Webhook deliveries" in page and "https://hooks.example/a" in page and "delivered" in page
    assert "out/report.csv" in page and "2.0 KB" in page and "&#34;rows&#34;: 3" in page
    assert 'id="replay"' in page and 'id="cancel"' not in page
