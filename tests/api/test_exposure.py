"""Safe to expose (DESIGN.md section 10), tried as a hostile caller would, against real `backburner api` and
`backburner dev` processes and a real Redis: request limits, idempotency keys, dev's Host and Origin checks,
authentication throttling and sessions, start-up refusals, the dashboard's own listener, and the docs page."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis

from jobs.runs import is_run_id
from tests.support.exposure import error_of, footprint, raw_request
from tests.support.procs import wait_for
from tests.support.servers import ApiProc, free_port

TOKEN = "exposure-test-token-0123456789"
ECHO = "/.netlify/functions/echo-background"


def secured_env(env: dict[str, str], **extra: str) -> dict[str, str]:
    """The deployed setting: not dev, a token, and a small failure allowance in a short window."""
    secured = {key: value for key, value in env.items() if key != "BACKBURNER_DEV"}
    return {**secured, "BACKBURNER_API_TOKEN": TOKEN, **extra}


def start(site: Path, env: dict[str, str], tmp_path: Path, *args: str, command: str = "api") -> ApiProc:
    proc = ApiProc(site, env, args=args, log=tmp_path / f"{command}-{free_port()}.log", command=command)
    if "BACKBURNER_DEV" not in env:
        proc.env.pop("BACKBURNER_DEV", None)  # the settings fixture may have put it in os.environ
    return proc.start()


@pytest.fixture
def dev_api(site: Path, env: dict[str, str], tmp_path: Path) -> Iterator[ApiProc]:
    proc = start(site, env, tmp_path)
    yield proc
    proc.stop()


@pytest.fixture
def secured_api(site: Path, env: dict[str, str], tmp_path: Path) -> Iterator[ApiProc]:
    # A window long enough for 40 parallel requests on a busy machine, short enough to wait out.
    extra = {"BACKBURNER_AUTH_FAILURE_LIMIT": "5", "BACKBURNER_AUTH_FAILURE_WINDOW": "8"}
    proc = start(site, secured_env(env, **extra), tmp_path)
    yield proc
    proc.stop()


def run_ids(client: redis.Redis, namespace: str) -> list[str]:
    return [key.decode() for key in client.zrange(f"{namespace}:index:runs", 0, -1)]


# -- 1. request limits -------------------------------------------------------------------------------


def test_oversized_headers_and_urls_are_refused_as_json_and_nothing_is_stored(dev_api, redis_client, namespace):
    before = footprint(redis_client, namespace)
    one_header = {"x-big": "v" * (8 * 1024 - len("x-big") + 1)}
    response = httpx.post(dev_api.url + ECHO, headers=one_header)
    assert response.status_code == 431
    assert error_of(response.content)["code"] == "header_too_large"
    assert "'x-big' is 8193 bytes" in response.json()["error"]["message"]
    many = {f"x-part-{n}": "v" * 7000 for n in range(5)}  # each under 8 KB, 35 KB together
    response = httpx.post(dev_api.url + ECHO, headers=many)
    assert response.status_code == 431 and response.json()["error"]["code"] == "headers_too_large"
    response = httpx.post(dev_api.url + ECHO + "?q=" + "a" * (8 * 1024))
    assert response.status_code == 414 and response.json()["error"]["code"] == "url_too_long"
    # Far past the limits, the server stops reading the head and answers at once.
    status, headers, body = raw_request(
        dev_api.port, b"POST " + ECHO.encode() + b" HTTP/1.1\r\nHost: localhost\r\nX-Huge: " + b"h" * (1 << 20)
    )
    assert status == 431 and error_of(body)["code"] == "headers_too_large"
    # A request target that is not a path ("OPTIONS *" asks about the server as a whole) is a clear 400.
    for method in (b"OPTIONS", b"GET", b"POST"):
        status, _, body = raw_request(
            dev_api.port, method + b" * HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        assert status == 400 and "is not a path" in error_of(body)["message"], (method, status, body)
    status, _, body = raw_request(dev_api.port, b"GET /api/runs?q=" + b"q" * 200_000 + b" HTTP/1.1\r\n")
    assert status == 414 and error_of(body)["code"] == "url_too_long"
    assert footprint(redis_client, namespace) == before  # nothing stored for any of them
    # Right at the limits everything is accepted.
    at_limit = {"x-big": "v" * (8 * 1024 - len("x-big"))}
    accepted = httpx.post(dev_api.url + ECHO, headers=at_limit)
    assert accepted.status_code == 202
    assert httpx.get(dev_api.url + "/api/runs?function=echo-background&x=" + "a" * 7000).status_code == 200


def test_a_chunked_body_is_counted_as_it_arrives(dev_api, redis_client, namespace):
    before = footprint(redis_client, namespace)

    def chunks(total: int) -> Iterator[bytes]:
        for _ in range(total // 65536):
            yield b"x" * 65536

    response = httpx.post(dev_api.url + ECHO, content=chunks(320 * 1024))  # no Content-Length: chunked
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"
    dashboard_form = httpx.post(dev_api.url + "/functions/echo-background/run", content=chunks(7 * 1024 * 1024))
    assert dashboard_form.status_code == 413
    assert footprint(redis_client, namespace) == before


# -- 2. idempotency keys -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "why"),
    [(b"", "empty"), (b"k" * 256, "256 characters"), ("clé".encode(), "not printable ASCII")],
)
def test_malformed_idempotency_keys_are_400_and_store_nothing(dev_api, redis_client, namespace, key, why):
    before = footprint(redis_client, namespace)
    for path in (ECHO, "/api/functions/echo-background/runs"):
        request = b"POST " + path.encode() + b" HTTP/1.1\r\nHost: localhost\r\nIdempotency-Key: " + key
        status, _, body = raw_request(dev_api.port, request + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        assert status == 400, (path, body)
        assert error_of(body)["code"] == "invalid_input" and why in error_of(body)["message"]
    twice = httpx.post(dev_api.url + ECHO, headers=[("Idempotency-Key", "a"), ("Idempotency-Key", "b")])
    assert twice.status_code == 400 and "one Idempotency-Key" in twice.json()["error"]["message"]
    assert footprint(redis_client, namespace) == before


def test_keys_are_scoped_per_surface_and_bound_to_the_request(dev_api, redis_client, namespace):
    key = {"Idempotency-Key": "report-2026-12-04"}
    # An anonymous caller claims the key on the public URL with a payload of its choosing...
    public = httpx.post(dev_api.url + ECHO, headers=key, content=b'{"attacker": true}')
    assert public.status_code == 202
    # ...which never answers the operator's call through the management API with the same key.
    operator = httpx.post(dev_api.url + "/api/functions/echo-background/runs", headers=key, json={"day": "12-04"})
    assert operator.status_code == 202 and operator.json()["id"] != public.headers["x-nf-request-id"]
    again = httpx.post(dev_api.url + "/api/functions/echo-background/runs", headers=key, json={"day": "12-04"})
    assert again.status_code == 202 and again.json()["id"] == operator.json()["id"]
    assert len(run_ids(redis_client, namespace)) == 2
    # The same request again is the same run; any difference is a 409 naming the run the key made.
    same = httpx.post(dev_api.url + ECHO, headers=key, content=b'{"attacker": true}')
    assert same.status_code == 202 and same.headers["x-nf-request-id"] == public.headers["x-nf-request-id"]
    before = footprint(redis_client, namespace)
    for method, path, body in [
        ("POST", ECHO, b'{"attacker": false}'),
        ("POST", ECHO + "?x=1", b'{"attacker": true}'),
        ("PUT", ECHO, b'{"attacker": true}'),
        ("POST", ECHO + "/sub", b'{"attacker": true}'),
    ]:
        conflict = httpx.request(method, dev_api.url + path, headers=key, content=body)
        assert conflict.status_code == 409, (method, path)
        error = conflict.json()["error"]
        assert error["code"] == "idempotency_conflict" and public.headers["x-nf-request-id"] in error["message"]
    other = httpx.post(dev_api.url + "/api/functions/echo-background/runs", headers=key, json={"day": "12-05"})
    assert other.status_code == 409 and operator.json()["id"] in other.json()["error"]["message"]
    assert footprint(redis_client, namespace) == before  # a conflict stores nothing


def test_a_public_key_cannot_claim_a_schedule_tick(dev_api, runtime):
    from datetime import UTC, datetime

    from jobs.schedules.ticks import existing_tick_run, tick_key

    tick = datetime(2026, 12, 4, 6, 0, tzinfo=UTC)
    key = tick_key("echo-background", tick)
    assert httpx.post(dev_api.url + ECHO, headers={"Idempotency-Key": key}).status_code == 202
    assert existing_tick_run(runtime.store, "echo-background", "echo-background", tick) is None


# -- 3. dev: Host and Origin ---------------------------------------------------------------------------


def test_dev_answers_only_to_local_host_names(dev_api, redis_client, namespace):
    before = footprint(redis_client, namespace)
    for host in ("evil.example", "evil.example:8888", "localhost.evil.example", "127.0.0.1.nip.io", "[::2]"):
        for path in ("/api/runs", ECHO, "/", "/healthz"):
            response = httpx.post(dev_api.url + path, headers={"host": host}) if path == ECHO else None
            response = response or httpx.get(dev_api.url + path, headers={"host": host})
            assert response.status_code == 400, (host, path)
            assert response.json()["error"]["code"] == "host_not_allowed"
    status, _, body = raw_request(dev_api.port, b"GET /api/runs HTTP/1.0\r\n\r\n")  # no Host at all
    assert status == 400 and error_of(body)["code"] == "host_not_allowed"
    assert footprint(redis_client, namespace) == before
    for host in ("localhost", f"localhost:{dev_api.port}", "127.0.0.1", f"[::1]:{dev_api.port}", "LOCALHOST."):
        assert httpx.get(dev_api.url + "/api/runs", headers={"host": host}).status_code == 200, host


def test_dev_refuses_writes_from_foreign_origins(dev_api, redis_client, namespace):
    before = footprint(redis_client, namespace)
    for origin in ("https://evil.example", "null", "http://localhost.evil.example", "file://", "http://[::2]"):
        for method, path in [("POST", ECHO), ("POST", "/api/functions/echo-background/runs"), ("DELETE", ECHO)]:
            response = httpx.request(method, dev_api.url + path, headers={"origin": origin})
            assert response.status_code == 403, (origin, path)
            assert response.json()["error"]["code"] == "forbidden_origin"
    assert footprint(redis_client, namespace) == before
    # Pages served from this machine, any port, may; so may clients that send no Origin (curl, the CLI).
    local = httpx.post(dev_api.url + ECHO, headers={"origin": "http://localhost:5173"})
    assert local.status_code == 202
    assert httpx.post(dev_api.url + ECHO).status_code == 202
    # Reading is not a write: a foreign Origin on GET is fine (the browser keeps the answer from the page).
    assert httpx.get(dev_api.url + "/api/runs", headers={"origin": "https://evil.example"}).status_code == 200


def test_allowed_hosts_extend_the_list(site, env, tmp_path):
    proc = start(site, {**env, "BACKBURNER_ALLOWED_HOSTS": "devbox.lan, Other.Example"}, tmp_path)
    try:
        for host in ("devbox.lan", "other.example:8888"):
            assert httpx.get(proc.url + "/api/runs", headers={"host": host}).status_code == 200
        assert httpx.get(proc.url + "/api/runs", headers={"host": "evil.example"}).status_code == 400
    finally:
        proc.stop()


def run_cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "backburner", *args]
    import os

    environment = {key: value for key, value in {**os.environ, **env}.items() if key != "BACKBURNER_DEV"}
    if env.get("BACKBURNER_DEV"):
        environment["BACKBURNER_DEV"] = env["BACKBURNER_DEV"]
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=timeout)


def test_dev_refuses_a_network_address_without_a_token(site, env):
    plain = {key: value for key, value in env.items() if key != "BACKBURNER_API_TOKEN"}
    for args in (["dev", "--host", "0.0.0.0"], ["api", "--host", "0.0.0.0"]):
        done = run_cli(*args, "--site", str(site), "--port", str(free_port()), env=plain)
        assert done.returncode == 1, done.stderr
        assert "listens on loopback only" in done.stderr and "BACKBURNER_API_TOKEN" in done.stderr
        assert "Traceback" not in done.stderr + done.stdout
    short = run_cli("dev", "--host", "0.0.0.0", "--site", str(site), env={**plain, "BACKBURNER_API_TOKEN": "short"})
    assert short.returncode == 1 and "at least 16 characters" in short.stderr


def test_dev_on_a_network_address_with_a_token(site, env, tmp_path):
    proc = start(site, {**env, "BACKBURNER_API_TOKEN": TOKEN}, tmp_path, "--host", "0.0.0.0")
    try:
        bearer = {"authorization": f"Bearer {TOKEN}"}
        assert httpx.get(proc.url + "/api/runs").status_code == 401  # a token set in dev is required
        assert httpx.get(proc.url + "/api/runs", headers=bearer).status_code == 200
        # Bound to every address: any IP literal is "the bound address"; names still must be listed.
        assert httpx.get(proc.url + "/api/runs", headers={**bearer, "host": "192.0.2.7:8888"}).status_code == 200
        assert httpx.get(proc.url + "/api/runs", headers={**bearer, "host": "evil.example"}).status_code == 400
    finally:
        proc.stop()


def test_backburner_dev_itself_refuses_foreign_hosts(site, env, tmp_path):
    proc = start(site, env, tmp_path, command="dev")
    try:
        assert httpx.get(proc.url + "/api/runs", headers={"host": "evil.example"}).status_code == 400
        assert httpx.get(proc.url + "/api/runs").status_code == 200
    finally:
        proc.stop()


# -- 4. authentication: throttling, sessions, token rules --------------------------------------------------


def test_failed_bearer_tokens_are_throttled_per_address_and_logged(secured_api, tmp_path):
    url = secured_api.url + "/api/runs"
    guesses = [f"guess-{n:04d}-not-the-token" for n in range(40)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda g: httpx.get(url, headers={"authorization": f"Bearer {g}"}), guesses))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [401] * 5 + [429] * 35  # exactly the allowance got an answer, in parallel too
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.json()["error"]["code"] == "too_many_attempts" and 1 <= int(refused.headers["retry-after"]) <= 8
    good = {"authorization": f"Bearer {TOKEN}"}
    assert httpx.get(url, headers=good).status_code == 429  # even the right token, or the block would leak it
    other_client = {**good, "x-forwarded-for": "198.51.100.23"}  # another address behind the trusted proxy
    assert httpx.get(url, headers=other_client).status_code == 200
    wait_for(lambda: httpx.get(url, headers=good).status_code == 200, timeout=20, message="the window to end")
    log = secured_api.log.read_text()
    assert "wrong API token (Authorization header) from 127.0.0.1 (1 of 5 allowed in 8s)" in log
    assert "blocking authentication from 127.0.0.1" in log
    assert not any(guess in log for guess in guesses) and TOKEN not in log


def login_page_csrf(client: httpx.Client, base: str) -> str:
    page = client.get(base + "/login")
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


def login(client: httpx.Client, base: str, token: str = TOKEN, headers: dict[str, str] | None = None) -> httpx.Response:
    csrf = login_page_csrf(client, base)
    data = {"token": token, "next": "/", "csrf": csrf}
    return client.post(base + "/login", data=data, headers=headers or {})


def test_failed_logins_are_throttled_too(secured_api):
    proxy = {"x-forwarded-for": "203.0.113.9"}
    with httpx.Client(headers=proxy) as browser:
        statuses = [login(browser, secured_api.url, token=f"wrong-{n}").status_code for n in range(7)]
        assert statuses == [401] * 5 + [429] * 2
        blocked = login(browser, secured_api.url)
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1
        assert "Too many failed logins" in blocked.text
    log = secured_api.log.read_text()
    assert "wrong API token (dashboard login) from 203.0.113.9" in log and "wrong-0" not in log


def test_logout_and_token_rotation_revoke_sessions(site, env, tmp_path, redis_client, namespace):
    proc = start(site, secured_env(env), tmp_path)
    try:
        with httpx.Client() as browser:
            assert login(browser, proc.url).status_code == 303
            cookie = browser.cookies["backburner_session"]
            assert browser.get(proc.url + "/api/runs").status_code == 200
            csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get(proc.url + "/").text).group(1)
            assert browser.post(proc.url + "/logout", data={"csrf": csrf}).status_code == 303
        replayed = httpx.get(proc.url + "/api/runs", cookies={"backburner_session": cookie})
        assert replayed.status_code == 401  # the stolen or kept cookie is worthless after logout
        with httpx.Client() as browser:
            assert login(browser, proc.url).status_code == 303
            kept = browser.cookies["backburner_session"]
        session_key = f"{namespace}:session:{hashlib.sha256(kept[3:].encode()).hexdigest()}".encode()
        assert redis_client.exists(session_key)
    finally:
        proc.stop()
    rotated = start(site, {**secured_env(env), "BACKBURNER_API_TOKEN": TOKEN + "-rotated"}, tmp_path)
    try:
        assert httpx.get(rotated.url + "/api/runs", cookies={"backburner_session": kept}).status_code == 401
        assert not redis_client.exists(session_key)  # revoked, not just ignored
    finally:
        rotated.stop()


def test_short_tokens_are_refused_at_start_up_with_one_clear_message(site, env):
    secured = secured_env(env, BACKBURNER_API_TOKEN="only-15-chars!!")
    done = run_cli("api", "--site", str(site), "--port", str(free_port()), env=secured)
    assert done.returncode == 1
    assert "BACKBURNER_API_TOKEN is 15 characters long; use at least 16" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout and "only-15-chars" not in done.stderr


# -- 5. the dashboard on its own listener ------------------------------------------------------------------------


def test_the_dashboard_can_have_its_own_listener(tmp_path, env):
    from tests.support.sites import TOML, make_site

    # The site routes `hello` at /hello-route and at /runs/latest, a path the dashboard has too.
    site = make_site(
        tmp_path / "routed", toml=TOML + '\n[functions."hello"]\n  path = ["/hello-route", "/runs/latest"]\n'
    )
    dashboard_port = free_port()
    proc = start(
        site, secured_env({**env, "BACKBURNER_SITE": str(site)}), tmp_path, "--dashboard-port", str(dashboard_port)
    )
    dashboard = f"http://127.0.0.1:{dashboard_port}"
    bearer = {"authorization": f"Bearer {TOKEN}"}
    try:
        # Functions (their URLs and the site's routes) answer on the API listener only, the dashboard on its own.
        assert httpx.get(proc.url + "/.netlify/functions/hello").status_code == 200
        assert httpx.get(proc.url + "/hello-route").json()["hello"] == "world"
        assert httpx.get(proc.url + "/runs/latest").json()["hello"] == "world"  # no dashboard here to shadow it
        for path in ("/.netlify/functions/hello", "/hello-route"):
            refused = httpx.get(dashboard + path)
            assert refused.status_code == 404 and f"port {proc.port}" in refused.json()["error"]["message"]
        for path in ("/", "/login", "/runs", "/static/app.css"):
            moved = httpx.get(proc.url + path)
            assert moved.status_code == 404 and f"port {dashboard_port}" in moved.json()["error"]["message"]
        assert httpx.post(proc.url + "/login", data={"token": TOKEN}).status_code == 404
        with httpx.Client() as browser:
            assert login(browser, dashboard).status_code == 303
            cookie = browser.cookies["backburner_session"]
            assert browser.get(dashboard + "/runs").status_code == 200
            assert browser.get(dashboard + "/api/runs").status_code == 200  # the pages' own API calls
        # Browsers send cookies to every port of a host: on the API listener the cookie counts for nothing.
        assert httpx.get(proc.url + "/api/runs", cookies={"backburner_session": cookie}).status_code == 401
        assert httpx.get(proc.url + "/api/runs", headers=bearer).status_code == 200
        assert httpx.get(dashboard + "/api/runs", headers=bearer).status_code == 200
    finally:
        proc.stop()


def test_a_dashboard_listener_keeps_the_api_logging_as_configured(site, env, tmp_path):
    # Building the dashboard's listener once reset logging to uvicorn's own: plain lines and an access log
    # carrying every query string, secrets included.
    secret = "whsec_" + "Q" * 32
    json_env = secured_env(env, BACKBURNER_LOG_FORMAT="json", BACKBURNER_WEBHOOK_SECRET=secret)
    proc = start(site, json_env, tmp_path, "--dashboard-port", str(free_port()))
    try:
        assert httpx.get(proc.url + f"/.netlify/functions/hello?k={secret}&X-Amz-Signature=abc123").status_code == 200
    finally:
        proc.stop()
    lines = proc.log.read_text().splitlines()
    entries = [json.loads(line) for line in lines]  # every line JSON, none of uvicorn's plain ones
    assert any(entry["message"].startswith("Dashboard on its own listener") for entry in entries)
    assert not any("/.netlify/functions/hello" in line for line in lines)  # no access log
    assert secret not in proc.log.read_text()


def test_the_dashboard_port_can_come_from_the_environment(site, env, tmp_path):
    dashboard_port = free_port()
    proc = start(site, {**env, "BACKBURNER_DASHBOARD_PORT": str(dashboard_port)}, tmp_path)
    try:
        assert httpx.get(f"http://127.0.0.1:{dashboard_port}/").status_code == 200
        assert httpx.get(proc.url + "/").status_code == 404
    finally:
        proc.stop()


# -- 6. secrets stay out of events ----------------------------------------------------------------------------------


def test_handlers_never_see_the_session_cookie_or_the_api_token(secured_api, redis_client, namespace):
    headers = {
        "cookie": "theme=dark; backburner_session=s1.secret-session-id; lang=en",
        "authorization": f"Bearer {TOKEN}",
    }
    response = httpx.post(secured_api.url + ECHO, headers=headers)
    event = redis_client.get(f"{namespace}:run:{response.headers['x-nf-request-id']}:event").decode()
    assert "secret-session-id" not in event and TOKEN not in event
    assert "theme=dark; lang=en" in event
    own = httpx.post(secured_api.url + ECHO, headers={"authorization": "Bearer the-functions-own-scheme"})
    own_event = redis_client.get(f"{namespace}:run:{own.headers['x-nf-request-id']}:event").decode()
    assert "the-functions-own-scheme" in own_event


# -- 7. the docs page -------------------------------------------------------------------------------------------


def test_docs_are_served_from_the_package_with_a_strict_policy(dev_api):
    page = httpx.get(dev_api.url + "/api/docs")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(source.startswith("/api/docs/") for source in sources)  # nothing from elsewhere
    assert "script-src 'self'" in page.headers["content-security-policy"] and "<script>" not in page.text
    for source in sources:
        asset = httpx.get(dev_api.url + source)
        assert asset.status_code == 200 and asset.content, source
    bundle = httpx.get(dev_api.url + "/api/docs/swagger-ui-bundle.js")
    assert bundle.headers["content-type"].startswith("text/javascript") and b"SwaggerUIBundle" in bundle.content
    assert httpx.get(dev_api.url + "/api/docs/..%2F..%2Fetc%2Fpasswd").status_code == 404
    assert httpx.get(dev_api.url + "/api/docs/redoc.standalone.js").status_code == 404
    assert is_run_id("01ARZ3NDEKTSV4RRFFQ69G5FAV")


def test_a_hung_redis_gets_callers_a_503_after_one_timeout_and_probes_theirs_at_once(site, env, redis_server, tmp_path):
    """Redis that stops answering (SIGSTOP: a partition or a frozen host looks the same) is not retried on the
    same socket timeout again and again: a write's caller gets 503 after one (10 s), a readiness probe at 2 s."""
    proc = start(site, {**env, "BACKBURNER_DEV": "1"}, tmp_path)
    try:
        assert httpx.get(f"{proc.url}/readyz").json()["redis"] == "ok"
        warm = httpx.post(f"{proc.url}/api/functions/echo-background/runs", json={})  # a connection made before
        assert warm.status_code == 202
        os.kill(redis_server.process.pid, signal.SIGSTOP)
        try:
            probe = httpx.get(f"{proc.url}/readyz", timeout=6)  # 2 s; three times 10 s before
            assert probe.status_code == 503 and probe.json()["status"] == "unavailable"
            sent = httpx.post(f"{proc.url}/api/functions/echo-background/runs", json={}, timeout=25)  # not 30 s
            assert sent.status_code == 503 and sent.json()["error"]["code"] == "store_unavailable"
        finally:
            os.kill(redis_server.process.pid, signal.SIGCONT)
        # A hung Redis runs the write when it wakes: the 503 names the run that may exist, and says how to tell.
        run_id = sent.headers["x-nf-request-id"]
        assert f"run {run_id} may have been created all the same" in sent.json()["error"]["message"]
        created = wait_for(lambda: (r := httpx.get(f"{proc.url}/api/runs/{run_id}")).status_code == 200 and r.json())
        assert created["function"] == "echo-background"
        assert httpx.post(f"{proc.url}/api/functions/echo-background/runs", json={}, timeout=25).status_code == 202
    finally:
        proc.stop()


def test_dev_with_a_token_says_the_dashboard_asks_for_it(site, env, tmp_path):
    proc = start(site, {**env, "BACKBURNER_API_TOKEN": TOKEN}, tmp_path, command="dev")
    try:
        assert proc.log is not None
        ready = wait_for(
            lambda: [line for line in proc.log.read_text().splitlines() if line.startswith("Ready in ")],
            timeout=60,
            message="dev to say it is ready",
        )
        assert ready[0].endswith(f"{proc.url}/ (the dashboard; log in with BACKBURNER_API_TOKEN)"), ready
        assert httpx.get(proc.url + "/", follow_redirects=False).status_code == 303  # to the login page
    finally:
        proc.stop()
