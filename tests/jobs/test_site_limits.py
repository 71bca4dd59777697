"""Configuration that cannot be honoured never loads; the limits a function may set (memory, result size,
environment) are read where they are written and merge like every Backburner key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.site import check_site, load_site
from jobs.site.model import DEFAULT_MAX_RESULT, DEFAULT_MEMORY_LIMIT
from jobs.site.values import defines_handler
from tests.jobs.test_site import HANDLER, functions, make_site, only_problem


def test_limits_default_to_2gb_of_memory_and_1mb_of_result(tmp_path: Path) -> None:
    make_site(tmp_path, files=functions("job-background.py"))
    function = load_site(tmp_path).get("job-background")
    assert (function.memory_limit, function.max_result, dict(function.environment)) == (2 << 30, 1 << 20, {})
    assert (DEFAULT_MEMORY_LIMIT, DEFAULT_MAX_RESULT) == (2 << 30, 1 << 20)


def test_memory_result_and_environment_are_read_per_pattern_and_inline(tmp_path: Path) -> None:
    toml = """
    [backburner]
      memory_limit = "1GB"
      environment = { REGION = "eu", LEVEL = 1 }

    [backburner.functions."report-*"]
      max_result = "256KB"
      environment = { REGION = "us", VERBOSE = true }
    """
    inline = 'config = {"memory_limit": "512MiB", "environment": {"TOKEN_URL": "https://auth.example.com"}}\n'
    make_site(tmp_path, toml, {**functions("other.py"), **functions("report-daily.py", text=inline + HANDLER)})
    site = load_site(tmp_path)
    report, other = site.get("report-daily"), site.get("other")
    assert (report.memory_limit, report.max_result) == (512 << 20, 256 << 10)
    assert dict(report.environment) == {
        "REGION": "us",
        "LEVEL": "1",
        "VERBOSE": "true",
        "TOKEN_URL": "https://auth.example.com",
    }
    assert (other.memory_limit, other.max_result, dict(other.environment)) == (
        1 << 30,
        1 << 20,
        {"REGION": "eu", "LEVEL": "1"},
    )


def test_a_netlify_toml_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    (tmp_path / "netlify.toml").write_bytes(b'\xef\xbb\xbf[backburner.functions."job"]\ntime_limit = "5m"\n')
    make_site(tmp_path, files=functions("job.py"))
    assert load_site(tmp_path).get("job").time_limit_s == 300.0


def test_a_function_file_without_a_handler_is_a_problem(tmp_path: Path) -> None:
    make_site(tmp_path, files=functions("empty.py", text="def helper():\n    pass\n"))
    problem = only_problem(tmp_path)
    assert (problem.file, problem.key) == ("netlify/functions/empty.py", "handler")
    assert "defines no handler" in problem.message


@pytest.mark.parametrize(
    ("source", "said"),
    [
        ("import json\n\ndef handler(event):\n    pass\n", "handler(event) cannot take (event, context)"),
        ("def handler(event, context, extra):\n    pass\n", "needs 3 arguments"),
        ("async def handler(event, context, *, mode):\n    pass\n", "needs keyword argument(s) mode"),
    ],
)
def test_a_handler_that_cannot_be_called_with_event_and_context_is_a_problem_naming_its_line(
    tmp_path: Path, source: str, said: str
) -> None:
    make_site(tmp_path, files=functions("wrong-background.py", text=source))
    problem = only_problem(tmp_path)
    assert (problem.file, problem.key) == ("netlify/functions/wrong-background.py", "handler")
    assert problem.line == next(n for n, line in enumerate(source.split("\n"), 1) if "def handler" in line)
    assert said in problem.message


@pytest.mark.parametrize(
    "source",
    [
        "def handler(event, context=None): pass",
        "def handler(*args): pass",
        "@wrapped\ndef handler(request): pass",
        "def handler(request): pass\nhandler = adapt(handler)",
    ],
)
def test_handlers_that_take_event_and_context_or_are_wrapped_are_fine(tmp_path: Path, source: str) -> None:
    make_site(tmp_path, files=functions("fine-background.py", text=source))
    assert load_site(tmp_path).get("fine-background").name == "fine-background"


@pytest.mark.parametrize(
    ("source", "defines"),
    [
        ("def handler(event, context): pass", True),
        ("async def handler(event, context): pass", True),
        ("handler = make_handler()", True),
        ("handler: object = make_handler()", True),
        ("from .impl import handler", True),
        ("from impl import run as handler", True),
        ("from impl import *", True),
        ("import sys\nif sys.platform:\n    def handler(e, c): pass\nelse:\n    handler = None", True),
        ("try:\n    from fast import handler\nexcept ImportError:\n    from slow import handler", True),
        ("def helper(): pass\nclass Handler: pass", False),
        ("def outer():\n    def handler(e, c): pass", False),
        ("x = 1", False),
    ],
)
def test_a_handler_is_found_statically(source: str, defines: bool) -> None:
    import ast

    assert defines_handler(ast.parse(source)) is defines


def test_check_prints_every_problem_once_and_fails(tmp_path: Path) -> None:
    toml = """
    [backburner.functions."job-background"]
      retries = [inf]
      time_limit = "99999999d"
      artifacts = "gs://bucket/reports"
      memory_limit = "1KB"

    [backburner.functions."other-*"]
      retries = ["nan"]
      artifacts = "s3://Bad_Bucket"
    """
    make_site(tmp_path, toml, {**functions("job-background.py"), **functions("nohandler.py", text="x = 1\n")})
    env = {**os.environ, "COLUMNS": "300"}
    done = subprocess.run(
        [sys.executable, "-m", "backburner", "check", "--site", str(tmp_path)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.startswith("error")]
    assert len(lines) == len(set(lines)) == 7, done.stderr
    said = ["inf is not a duration", "at most 24h", "only s3://bucket/prefix", "from 32MB to 1TB"]
    said += ["'nan' is not a duration", "'Bad_Bucket' is not a valid S3 bucket name", "defines no handler"]
    for says in said:
        assert sum(says in line for line in lines) == 1, says
    _site, problems = check_site(tmp_path)
    assert len(problems) == 7


def test_a_worker_with_several_processes_says_what_is_wrong_once_and_starts_none(tmp_path: Path) -> None:
    make_site(tmp_path, '[backburner]\n  retries = ["99999999d"]\n', functions("job-background.py"))
    env = {**os.environ, "COLUMNS": "300", "REDIS_URL": "redis://127.0.0.1:1/0"}
    done = subprocess.run(
        [sys.executable, "-m", "backburner", "worker", "--processes", "3", "--site", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.count("at most 7d") == 1, done.stderr


def test_every_bad_entry_of_a_list_or_table_is_named_at_once(tmp_path: Path) -> None:
    """A fix per round trip through `check` is slow going: each bad entry is named, the good ones are not."""
    make_site(
        tmp_path,
        """
        [backburner.functions."job-background"]
          on_failure = ["not a url", "https://ok.example/x", 5]
        """,
        functions("job-background.py"),
    )
    problem = only_problem(tmp_path)
    assert problem.key.endswith(".on_failure")
    assert "'not a url', 5 are not webhook URLs" in problem.message and "ok.example" not in problem.message

    make_site(
        tmp_path,
        """
        [backburner.functions."job-background"]
          environment = { OK = [1], "BAD NAME" = "x", FINE = "y" }
        """,
    )
    problem = only_problem(tmp_path)
    assert "OK = [1] must be a string" in problem.message and "'BAD NAME' is not a variable name" in problem.message
    assert "FINE" not in problem.message
