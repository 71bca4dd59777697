"""The site's routes through the API: rewrites and own paths reach functions; Backburner's endpoints win."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.procs import wait_for
from tests.support.sites import FUNCTIONS, TOML, make_site

#: Backburner's own paths, each the target of a forced rule that must not take it over.
OWN_ENDPOINTS = ["/healthz", "/readyz", "/metrics", "/openapi.json", "/api/functions", "/api/runs", "/", "/functions"]

ROUTES_TOML = (
    TOML
    + """
[[redirects]]
  from = "/api/*"
  to = "/.netlify/functions/:splat"
  status = 200

[[redirects]]
  from = "/jobs/:id"
  to = "/.netlify/functions/echo-background"
  status = 200
"""
    + "".join(
        f'\n[[redirects]]\n  from = "{path}"\n  to = "/.netlify/functions/echo"\n  status = 200\n  force = true\n'
        for path in OWN_ENDPOINTS
    )
    + """
[[redirects]]
  from = "/legacy/*"
  to = "https://old.example.com/:splat"
  status = 200

[[redirects]]
  from = "/*"
  to = "/.netlify/functions/echo"
  status = 200
"""
)

OWN = {
    "own": """
        import json
        config = {"path": ["/own", "/own/:id/*"]}
        def handler(event, context):
            return {"statusCode": 201, "body": json.dumps({"own": event["path"], "route": event.get("route")})}
    """,
    "verb": """
        config = {"path": ["/api/runs/:a/:b/*", "/healthz/*"]}
        def handler(event, context):
            return {"statusCode": 200, "headers": {"x-method": event["httpMethod"]}}
    """,
    "own-background": """
        config = {"path": "/queue/*"}
        def handler(event, context):
            return {"queued": event["path"]}
    """,
}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return make_site(tmp_path / "site", {**FUNCTIONS, **OWN}, ROUTES_TOML)


def test_a_rewrite_runs_the_function_with_the_callers_path_and_query(client):
    response = client.put(
        "/api/echo/deeper?x=1&x=2&y=", content=b'{"a": 1}', headers={"content-type": "application/json"}
    )

    assert response.status_code == 200, response.text
    event = json.loads(response.text)
    assert event["path"] == "/api/echo/deeper"
    assert event["httpMethod"] == "PUT"
    assert event["rawQuery"] == "x=1&x=2&y="
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"], "y": [""]}
    assert event["rawUrl"].endswith("/api/echo/deeper?x=1&x=2&y=")
    assert event["body"] == '{"a": 1}'
    assert response.headers["x-nf-request-id"]


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "DELETE", "OPTIONS"])
def test_every_method_is_routed(client, method):
    response = client.request(method, "/api/hello")

    assert response.status_code == 200 and response.json() == {"hello": "world", "method": method}


def test_a_background_function_reached_by_a_rule_answers_202_with_its_headers(client, runtime):
    response = client.post("/jobs/42?retry=no", json={"n": 1}, headers={"Idempotency-Key": "job-42"})

    assert response.status_code == 202 and response.content == b""
    run_id = response.headers["x-nf-request-id"]
    assert response.headers["location"] == f"/api/runs/{run_id}"
    run = client.get(f"/api/runs/{run_id}").json()
    assert (run["function"], run["trigger"], run["status"]) == ("echo-background", "http", "queued")
    event = runtime.store.event(run_id)
    assert (event["path"], event["rawQuery"], json.loads(event["body"])) == ("/jobs/42", "retry=no", {"n": 1})
    again = client.post("/jobs/42?retry=no", json={"n": 1}, headers={"Idempotency-Key": "job-42"})
    assert again.headers["x-nf-request-id"] == run_id


def test_a_functions_own_paths(client, runtime):
    assert client.get("/own/").json() == {"own": "/own/", "route": "/own"}
    deeper = client.post("/own/7/a/b")
    assert deeper.status_code == 201 and deeper.json() == {"own": "/own/7/a/b", "route": "/own/:id/*"}
    queued = client.post("/queue/nightly", content=b"go")
    assert queued.status_code == 202 and queued.headers["location"].startswith("/api/runs/")
    event = runtime.store.event(queued.headers["x-nf-request-id"])
    assert (event["path"], event["route"]) == ("/queue/nightly", "/queue/*")
    # Backburner keeps the function's Netlify URL too (Netlify would not): `backburner invoke` works for it.
    # No route matched there (nor through a rewrite rule): the event has no `route`, as on Netlify.
    direct = client.get("/.netlify/functions/own")
    assert direct.status_code == 201 and direct.json()["route"] is None


def test_limits_and_errors_are_those_of_the_function(client):
    too_big = client.post("/jobs/1", content=b"x" * (256 * 1024 + 1))
    assert too_big.status_code == 413 and "echo-background" in too_big.json()["error"]["message"]
    missing = client.get("/api/nope")
    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "code": "function_not_found",
        "message": "No function named 'nope' in this site.",
    }


@pytest.mark.parametrize(
    ("path", "status", "check"),  # every path in OWN_ENDPOINTS, with what Backburner itself answers there
    [
        ("/healthz", 200, lambda r: r.json() == {"status": "ok"}),
        ("/readyz", 503, lambda r: r.json() == {"status": "no_workers", "redis": "ok", "workers": 0}),
        ("/metrics", 200, lambda r: "backburner_" in r.text),
        ("/openapi.json", 200, lambda r: r.json()["info"]["title"] == "Backburner"),
        ("/api/functions", 200, lambda r: {f["name"] for f in r.json()} >= {"echo", "own"}),
        ("/api/runs", 200, lambda r: "runs" in r.json()),
        ("/", 200, lambda r: "text/html" in r.headers["content-type"]),
        ("/functions", 200, lambda r: "text/html" in r.headers["content-type"]),
    ],
)
def test_backburners_own_endpoints_are_never_shadowed_even_by_forced_rules(client, path, status, check):
    response = client.get(path)

    assert response.status_code == status and check(response), response.text[:300]
    assert path in OWN_ENDPOINTS


def test_a_wrong_method_on_backburners_own_path_stays_backburners(client):
    response = client.delete("/api/runs")

    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"


def test_an_unforced_catch_all_gets_what_nothing_else_matches(client):
    event = json.loads(client.get("/about/team").text)

    assert event["path"] == "/about/team" and "route" not in event  # reached by a rule, not an own path
    assert client.get("/own").json() == {"own": "/own", "route": "/own"}


def test_a_matching_rule_backburner_does_not_serve_is_a_404_that_says_which(client, site):
    line = 1 + next(n for n, text in enumerate((site / "netlify.toml").read_text().splitlines()) if "/legacy/*" in text)
    number = 3 + len(OWN_ENDPOINTS)

    response = client.get("/legacy/page")

    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "not_found",
        "message": (
            f"/legacy/page matches rule {number} (netlify.toml:{line - 1}: /legacy/* -> https://old.example.com/:splat "
            "200), which Backburner does not serve: a proxy to another site (status 200)."
        ),
    }


def test_without_routes_unknown_paths_are_a_plain_404(tmp_path, settings):
    from fastapi.testclient import TestClient

    from api.app import create_app

    make_site(Path(settings.site), FUNCTIONS)  # the default site: no rules, no own paths
    with TestClient(create_app(settings), base_url="http://localhost") as plain:  # dev answers loopback names only
        response = plain.post("/somewhere")

    assert response.status_code == 404
    assert response.json()["error"]["message"] == (
        "Nothing is served at /somewhere: no function and no rewrite onto one matches it."
    )


def test_a_new_redirects_file_applies_within_two_seconds(client, site):
    assert client.get("/late/1").status_code == 200  # the unforced catch-all: echo
    assert json.loads(client.get("/late/1").text)["path"] == "/late/1"
    (site / "_redirects").write_text("/late/*  /.netlify/functions/hello  200\n")

    wait_for(
        lambda: client.get("/late/1").json().get("hello") == "world",
        timeout=2.0,
        interval=0.1,
        message="the new _redirects rule to apply",
    )


def test_every_path_backburner_answers_is_in_api_paths(client):
    """`backburner check` warns with api.paths where a rule or own path never reaches: it must list them all."""
    from api import docs
    from api.dashboard import actions, auth, pages
    from api.paths import API, DASHBOARD

    def listed(path: str, prefixes: tuple[str, ...]) -> bool:
        return any(path == p or (p != "/" and path.startswith(p + "/")) for p in prefixes)

    documented = [*client.get("/openapi.json").json()["paths"], *(route.path for route in docs.router.routes)]
    documented += [path for path in (getattr(route, "path", None) for route in client.app.routes) if path]
    assert len(documented) > 20 and [path for path in documented if not listed(path, API + ("/static",))] == []
    dashboard = [route.path for module in (actions, auth, pages) for route in module.router.routes]
    assert len(dashboard) > 10 and [path for path in dashboard if not listed(path, DASHBOARD)] == []


@pytest.mark.parametrize("path", ["/api/runs", "/anything", "/.netlify/functions/echo"])
def test_a_websocket_handshake_gets_a_json_404_saying_none_is_served(client, path):
    from starlette.testclient import WebSocketDenialResponse

    with pytest.raises(WebSocketDenialResponse) as denied, client.websocket_connect(path):
        pass

    assert denied.value.status_code == 404
    assert denied.value.json()["error"] == {
        "code": "not_found",
        "message": "Backburner serves no WebSocket; follow a run with GET /api/runs/{id}/events (Server-Sent Events).",
    }


def test_head_below_an_own_path_that_no_endpoint_answers_reaches_the_site_as_head(client):
    """HEAD is answered as GET only where one of Backburner's own endpoints answers the GET; elsewhere (here the
    catch-all rule onto `echo`) the function gets the HEAD itself."""
    for path in ("/healthz/x", "/api/runs/a/b/c"):
        head = client.head(path)
        assert head.status_code == 200 and head.headers["x-method"] == "HEAD", path
    assert client.head("/healthz").status_code == 200 and client.head("/healthz").content == b""
