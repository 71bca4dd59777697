"""Routes onto functions: Netlify's rule syntax and matching, which rules are served, functions' own paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.site import check_site, load_site
from jobs.site.routes import RouteTable, compile_pattern
from tests.jobs.test_site import HANDLER, functions, line_of, make_site, only_problem


def table(root: Path) -> RouteTable:
    return load_site(root).routes


def rules_site(root: Path, toml: str, names: tuple[str, ...] = ("report", "hello", "store-7")) -> RouteTable:
    make_site(root, toml, functions(*(f"{name}.py" for name in names)))
    return table(root)


# -- patterns ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "values"),
    [
        ("/api/*", "/api/report", {"splat": "report"}),
        ("/api/*", "/api/a/b/c", {"splat": "a/b/c"}),
        ("/api/*", "/api", {"splat": ""}),
        ("/api/*", "/api/", {"splat": ""}),
        ("/*", "/", {"splat": ""}),
        ("/*", "/x/y", {"splat": "x/y"}),
        ("/r/:year/:month", "/r/2026/03/", {"year": "2026", "month": "03"}),
        ("/r/:year/*", "/r/2026/a/b", {"year": "2026", "splat": "a/b"}),
        ("/files/report*", "/files/report-2026.csv", {"splat": "-2026.csv"}),
        ("/exact/", "/exact", {}),
        ("/authors/c%C3%A9line", "/authors/céline", {}),
        ("/jobs/*.html", "/jobs/*.html", {}),  # a splat in the middle is literal text, as on Netlify
    ],
)
def test_patterns_match(pattern: str, path: str, values: dict[str, str]) -> None:
    from jobs.site.routes import normalize

    assert compile_pattern(pattern).match(normalize(path)) == values


@pytest.mark.parametrize(
    ("pattern", "path"),
    [
        ("/api/*", "/apis"),
        ("/api/*", "/API/x"),
        ("/r/:year", "/r/2026/03"),
        ("/r/:year", "/r"),
        ("/exact", "/exact/more"),
        ("/jobs/*.html", "/jobs/a.html"),
    ],
)
def test_patterns_do_not_match(pattern: str, path: str) -> None:
    assert compile_pattern(pattern).match(path) is None


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("api/x", "must start with '/'"),
        ("/a/*/b", "only as its last character"),
        ("/a?x=1", "without a query string"),
        ("/a/:bad-name", "is not a placeholder"),
    ],
)
def test_strict_patterns_refuse_what_the_syntax_cannot_say(path: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        compile_pattern(path, strict=True)


# -- rules from netlify.toml -------------------------------------------------------------------------

REWRITES = """
[[redirects]]
  from = "/api/*"
  to = "/.netlify/functions/:splat"
  status = 200

[[redirects]]
  from = "/reports/:name"
  to = "/.netlify/functions/report/:name?format=csv"
  status = "200"

[[redirects]]
  from = "/*"
  to = "/index.html"
  status = 200
"""


def test_rewrites_onto_functions_with_splat_and_placeholders(tmp_path: Path) -> None:
    routes = rules_site(tmp_path, REWRITES)

    assert routes.match("/api/hello").function == "hello"
    assert routes.match("/api/report/2026/03").function == "report"
    assert routes.match("/reports/weekly").function == "report"
    assert [rule.line for rule in routes.rules] == [
        line_of(tmp_path, "[[redirects]]") + offset for offset in (0, 5, 10)
    ]


def test_first_match_wins_even_when_it_is_not_served(tmp_path: Path) -> None:
    toml = '[[redirects]]\nfrom = "/*"\nto = "/app.html"\nstatus = 200\n' + REWRITES
    routes = rules_site(tmp_path, toml)

    found = routes.match("/api/hello")

    assert found.function is None
    assert found.message == (
        "/api/hello matches rule 1 (netlify.toml:1: /* -> /app.html 200), which Backburner does not serve: "
        "a rewrite to /app.html, not onto /.netlify/functions/: static files are not Backburner's job."
    )


def test_rules_starting_with_a_placeholder_keep_their_place_among_literal_ones(tmp_path: Path) -> None:
    toml = """
    [[redirects]]
      from = "/en/first"
      to = "/.netlify/functions/hello"
      status = 200
    [[redirects]]
      from = "/:lang/special"
      to = "/.netlify/functions/report"
      status = 200
    [[redirects]]
      from = "/en/*"
      to = "/.netlify/functions/store-7"
      status = 200
    """
    routes = rules_site(tmp_path, toml)

    assert [routes.match(path).function for path in ("/en/first", "/en/special", "/en/other", "/de/special")] == [
        "hello",
        "report",
        "store-7",
        "report",
    ]


def test_nothing_matches(tmp_path: Path) -> None:
    routes = rules_site(tmp_path, REWRITES.split('[[redirects]]\n  from = "/*"')[0])

    found = routes.match("/elsewhere")

    assert (found.function, found.message) == (
        None,
        "Nothing is served at /elsewhere: no function and no rewrite onto one matches it.",
    )


@pytest.mark.parametrize(
    ("rule", "note"),
    [
        ('from = "/a"\nto = "/.netlify/functions/hello"', "no status, so Netlify's default 301"),
        ('from = "/a"\nto = "/.netlify/functions/hello"\nstatus = 301', "a redirect (status 301)"),
        ('from = "/a"\nto = "/.netlify/functions/hello"\nstatus = 404', "a custom response (status 404)"),
        ('from = "/a"\nto = "https://api.example.com/a"\nstatus = 200', "a proxy to another site"),
        ('from = "/a"\nto = "/.netlify/builders/hello"\nstatus = 200', "not a function URL"),
        ('from = "/a"\nto = "/.netlify/functions/"\nstatus = 200', "names no function"),
        ('from = "/a/*"\nstatus = 200', "a rewrite to /a/:splat"),  # Netlify's forward rule
    ],
)
def test_rules_that_are_not_backburners_job_say_why(tmp_path: Path, rule: str, note: str) -> None:
    routes = rules_site(tmp_path, f"[[redirects]]\n{rule}\n")

    [only] = routes.rules
    assert only.target is None and note in (only.note or "")
    assert routes.match("/a").function is None


@pytest.mark.parametrize(
    ("rule", "note"),
    [
        ('to = "/.netlify/functions/hello"\nstatus = 200', "it has no 'from'; Netlify skips this rule"),
        ('from = "/a"\nstatus = 200', "it has no 'to'; Netlify skips this rule"),
        ('from = "/a"\nto = "/.netlify/functions/hello"\nstatus = "ok"', "status 'ok' is not a number"),
        (
            'from = "/.netlify/functions/x"\nto = "/.netlify/functions/hello"\nstatus = 200',
            "must not start with /.netlify",
        ),
        ('from = "/a"\nto = "/.netlify/functions/hello"\nstatus = 200\nheaders = "x"', "'headers' must be a table"),
        ('from = "https://old.example.com/*"\nto = "/.netlify/functions/hello"\nstatus = 200', "domain-level"),
        ('from = "a"\nto = "/.netlify/functions/hello"\nstatus = 200', "does not start with '/'"),
        (
            'from = "/a"\nto = "/.netlify/functions/hello"\nstatus = 200\n'
            'conditions = {Role = ["admin"], Country = ["DE"]}',
            "its conditions on Country, Role are evaluated by Netlify's edge only",
        ),
    ],
)
def test_rules_that_can_never_match_here_load_and_say_why(tmp_path: Path, rule: str, note: str) -> None:
    routes = rules_site(tmp_path, f"[[redirects]]\n{rule}\n")

    [only] = routes.rules
    assert only.pattern is None and note in (only.note or "")
    assert routes.match("/a").function is None


def test_redirects_that_is_not_an_array_is_a_warning_not_an_error(tmp_path: Path) -> None:
    routes = rules_site(tmp_path, '[redirects]\nfrom = "/a"\nto = "/.netlify/functions/hello"\nstatus = 200\n')

    assert routes.rules == () and routes.notes == (
        "netlify.toml:1: redirects must be an array of tables: write [[redirects]] above each rule",
    )


def test_old_field_names_and_forced_status_strings(tmp_path: Path) -> None:
    toml = '[[redirects]]\norigin = "/a/*"\ndestination = "/.netlify/functions/hello"\nstatus = "200!"\n'
    routes = rules_site(tmp_path, toml)

    assert routes.match("/a/b").function == "hello"
    assert routes.rules[0].force is False  # "!" forces in _redirects only; netlify.toml says force = true


def test_query_parameters_must_match_exactly_and_fill_placeholders(tmp_path: Path) -> None:
    toml = """
    [[redirects]]
      from = "/store"
      query = {id = ":id", kind = "book"}
      to = "/.netlify/functions/store-:id"
      status = 200
    """
    routes = rules_site(tmp_path, toml)

    assert routes.match("/store", [("kind", "book"), ("id", "7")]).function == "store-7"
    assert routes.match("/store", [("id", "7"), ("kind", "cd")]).function is None
    assert routes.match("/store", [("id", "7")]).function is None
    assert routes.match("/store", [("id", "7"), ("kind", "book"), ("utm", "x")]).function is None


def test_cookie_condition(tmp_path: Path) -> None:
    toml = """
    [[redirects]]
      from = "/beta/*"
      to = "/.netlify/functions/hello"
      status = 200
      conditions = {Cookie = ["beta", "staff"]}
    """
    routes = rules_site(tmp_path, toml)

    assert routes.match("/beta/x", cookies={"staff": "1"}).function == "hello"
    assert routes.match("/beta/x", cookies={"other": "1"}).function is None


# -- _redirects -------------------------------------------------------------------------------------

REDIRECTS_FILE = """\
# rewrites for the front-end
/api/*            /.netlify/functions/:splat   200
/store  id=:id    /.netlify/functions/store-:id 200
/go/*             /.netlify/functions/hello    200!   # forced

/legacy           /new                          301
/fr/*             /fr/index.html                200    Language=fr
/broken
"""


def test_a_redirects_file_in_the_publish_folder_comes_before_netlify_toml(tmp_path: Path) -> None:
    toml = '[build]\n  publish = "/public"\n\n[[redirects]]\n  from = "/api/*"\n  to = "/index.html"\n  status = 200\n'
    make_site(tmp_path, toml, {**functions("hello.py", "store-7.py"), "public/_redirects": REDIRECTS_FILE})

    site = load_site(tmp_path)
    routes = site.routes

    assert [(r.file, r.line) for r in routes.rules] == [("public/_redirects", n) for n in (2, 3, 4, 6, 7, 8)] + [
        ("netlify.toml", 4)
    ]
    assert routes.match("/api/hello").function == "hello"
    assert routes.match("/store", [("id", "7")]).function == "store-7"
    assert routes.rules[2].force is True and routes.match("/go/x").function == "hello"
    assert "a redirect (status 301)" in (routes.rules[3].note or "")
    assert "Language" in (routes.rules[4].note or "") and routes.rules[4].pattern is None
    assert routes.rules[5].note == "it has no 'to'; Netlify skips this rule"
    assert tmp_path.resolve() / "public/_redirects" in site.sources


def test_the_publish_folder_defaults_to_base(tmp_path: Path) -> None:
    files = {"web/netlify/functions/hello.py": HANDLER, "web/_redirects": "/hi /.netlify/functions/hello 200\n"}
    make_site(tmp_path, '[build]\nbase = "web"\n', files)

    assert table(tmp_path).match("/hi").function == "hello"


def test_a_redirects_file_with_a_byte_order_mark_keeps_its_first_rule(tmp_path: Path) -> None:
    make_site(tmp_path, "", {**functions("hello.py"), "_redirects": "\ufeff/hi /.netlify/functions/hello 200\n"})

    assert table(tmp_path).match("/hi").function == "hello"


def test_identical_rules_count_once_at_the_later_place(tmp_path: Path) -> None:
    toml = '[[redirects]]\nfrom = "/api/*"\nto = "/.netlify/functions/:splat"\nstatus = 200\n'
    files = {**functions("hello.py"), "_redirects": "/api/*  /.netlify/functions/:splat  200\n/x /y 301\n"}
    make_site(tmp_path, toml, files)

    assert [(r.number, r.where) for r in table(tmp_path).rules] == [(1, "_redirects:2"), (2, "netlify.toml:1")]


# -- precedence -------------------------------------------------------------------------------------


def test_own_paths_beat_unforced_rules_and_forced_rules_beat_own_paths(tmp_path: Path) -> None:
    toml = """
    [[redirects]]
      from = "/forced/*"
      to = "/.netlify/functions/hello"
      status = 200
      force = true

    [[redirects]]
      from = "/*"
      to = "/.netlify/functions/hello"
      status = 200
    """
    own = 'config = {"path": ["/forced/x", "/mine/*"]}\n' + HANDLER
    make_site(tmp_path, toml, {**functions("hello.py"), "netlify/functions/owner.py": own})
    routes = table(tmp_path)

    assert routes.match("/forced/x").function == "hello"
    assert routes.match("/mine/y").function == "owner"
    assert routes.match("/other").function == "hello"


def test_the_most_specific_own_path_wins(tmp_path: Path) -> None:
    files = {
        "netlify/functions/catchall.py": 'config = {"path": "/api/*"}\n' + HANDLER,
        "netlify/functions/item.py": 'config = {"path": "/api/items/:id"}\n' + HANDLER,
        "netlify/functions/new.py": 'config = {"path": "/api/items/new"}\n' + HANDLER,
    }
    make_site(tmp_path, None, files)
    routes = table(tmp_path)

    assert routes.match("/api/items/new").function == "new"
    assert routes.match("/api/items/42").function == "item"
    assert routes.match("/api/items").function == "catchall"
    assert routes.match("/api").function == "catchall"


# -- functions' own paths -----------------------------------------------------------------------------


def test_path_from_inline_config_or_the_functions_table(tmp_path: Path) -> None:
    toml = '[functions."table"]\n  path = "/from-toml"\n[functions."both"]\n  path = ["/toml-only"]\n'
    files = {
        "netlify/functions/inline.py": 'config = {"path": ["/a", "/b/:id"]}\n' + HANDLER,
        "netlify/functions/table.py": HANDLER,
        "netlify/functions/both.py": 'config = {"path": "/inline-wins"}\n' + HANDLER,
    }
    make_site(tmp_path, toml, files)

    site = load_site(tmp_path)

    assert site.get("inline").routes == ("/a", "/b/:id")
    assert site.get("table").routes == ("/from-toml",)
    assert site.get("both").routes == ("/inline-wins",)
    assert site.routes.match("/b/7").function == "inline"
    assert site.routes.match("/toml-only").function is None


def test_two_functions_claiming_the_same_path_is_a_precise_error(tmp_path: Path) -> None:
    toml = '[functions."second"]\n  schedule = "@daily"\n[functions."third"]\n  path = "/users/:name"\n'
    files = {
        "netlify/functions/first.py": 'config = {\n    "path": "/users/:id",\n}\n' + HANDLER,
        "netlify/functions/third.py": HANDLER,
    }
    make_site(tmp_path, toml, files)

    problem = only_problem(tmp_path)

    assert (problem.file, problem.line, problem.key) == ("netlify.toml", 4, 'functions."third".path')
    assert problem.message == (
        "path '/users/:name' of 'third' matches the same requests as '/users/:id' of 'first'; "
        "a request can reach only one function, so change one of them"
    )


def test_a_clash_in_inline_config_points_at_the_function_file(tmp_path: Path) -> None:
    files = {
        "netlify/functions/a.py": 'config = {"path": "/api/*"}\n' + HANDLER,
        "netlify/functions/b.py": 'import json\n\nconfig = {"schedule": None, "path": ["/x", "/api/*/"]}\n' + HANDLER,
    }
    make_site(tmp_path, None, files)

    problem = only_problem(tmp_path)

    assert (problem.file, problem.line, problem.key) == ("netlify/functions/b.py", 3, "config['path']")
    assert "'/api/*/' of 'b' matches the same requests as '/api/*' of 'a'" in problem.message


def test_a_scheduled_function_cannot_have_a_path(tmp_path: Path) -> None:
    make_site(
        tmp_path, None, {"netlify/functions/tick.py": 'config = {"schedule": "@hourly", "path": "/tick"}\n' + HANDLER}
    )

    problem = only_problem(tmp_path)

    assert (problem.file, problem.line, problem.key) == ("netlify/functions/tick.py", 1, "config['path']")
    assert problem.message.startswith("scheduled function 'tick' must not have a path (Netlify refuses this too)")


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ('"api/x"', "must start with '/'"),
        ("[]", "must be a path like '/api/report' or a list of them"),
        ("[1]", "must be a path like"),
        ('"/a/*/b"', "only as its last character"),
    ],
)
def test_bad_paths_are_precise_errors(tmp_path: Path, value: str, why: str) -> None:
    make_site(tmp_path, f'[functions."hello"]\n  path = {value}\n', functions("hello.py"))

    problem = only_problem(tmp_path)

    assert (problem.line, problem.key) == (2, 'functions."hello".path') and why in problem.message


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[functions]\n  path = "/everyone"\n', "functions.path"),
        ('[functions."report-*"]\n  path = "/reports"\n', 'functions."report-*".path'),
    ],
)
def test_a_path_for_many_functions_is_an_error(tmp_path: Path, toml: str, key: str) -> None:
    make_site(tmp_path, toml, functions("report-a.py"))

    problem = only_problem(tmp_path)

    assert (problem.line, problem.key) == (2, key)
    assert "a path routes requests to one function" in problem.message


def test_path_in_a_backburner_table_says_where_it_belongs(tmp_path: Path) -> None:
    make_site(tmp_path, '[backburner.functions."hello"]\n  path = "/hello"\n', functions("hello.py"))

    problem = only_problem(tmp_path)

    assert "'path' is a Netlify key: put it under [functions.\"hello\"]" in problem.message


def test_a_site_without_routes_has_an_empty_table(tmp_path: Path) -> None:
    site, problems = check_site(make_site(tmp_path, None, functions("hello.py")))

    assert problems == [] and site is not None and site.routes.empty


def test_the_example_site_reaches_its_functions_through_api_rewrites() -> None:
    example = load_site(Path(__file__).resolve().parents[2])

    assert example.routes.match("/api/hello").function == "hello"
    assert example.routes.match("/api/slow-background").function == "slow-background"
