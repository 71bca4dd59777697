"""The README against the code it describes: the paths it says are Backburner's own, the commands it gives."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.paths import API, DASHBOARD
from tests.support.procs import wait_for
from tests.support.sites import FUNCTIONS, make_site

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def between(start: str, end: str) -> str:
    """The README's text from ``start`` to ``end`` (both must be there, in that order)."""
    first = README.index(start)
    return README[first : README.index(end, first)]


def test_precedence_names_every_path_backburner_keeps_for_itself() -> None:
    step = between("1. Backburner's endpoints always answer themselves", "2. The first matching rule")
    named = re.findall(r"`([^`]+)`", " ".join(step.split()))
    missing = [path for path in DASHBOARD + API if not path.startswith("/api/") and path not in named
               and not any(name.startswith(f"{path}/") or name.startswith(f"{path}...") for name in named)]  # fmt: skip
    assert not missing, f"README's Precedence, step 1, leaves out {missing} (api/paths.py)"


def test_the_schemathesis_command_runs_as_written_once_the_extras_it_names_are_installed() -> None:
    text = " ".join(between("Schemathesis with all its checks", "## ").split())
    command = next(span for span in re.findall(r"`([^`]+)`", text) if "--config-file" in span)
    assert command.startswith(".venv/bin/schemathesis "), command
    assert (ROOT / command.split()[2]).is_file(), command
    install = next(span for span in re.findall(r"`([^`]+)`", text) if "pip install" in span)
    assert install.startswith(".venv/bin/pip install -e '.[test]'"), install
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    assert any(re.match(r"schemathesis\b", requirement) for requirement in extras)


def readme_block(language: str, containing: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", README, re.DOTALL)
    return next(block for block in blocks if containing in block)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """The default test site, with the README's example function."""
    example = readme_block("python", "# netlify/functions/nightly-report-background.py")
    return make_site(tmp_path / "site", {**FUNCTIONS, "nightly-report-background": example})


def test_the_example_function_finishes_at_ten_of_ten(client: TestClient, worker: object) -> None:
    answer = client.post("/.netlify/functions/nightly-report-background", json={"day": "2026-03-01"})
    assert answer.status_code == 202
    url = answer.headers["location"]
    run = wait_for(lambda: (r := client.get(url).json())["status"] in ("succeeded", "failed") and r, timeout=60)
    assert run["status"] == "succeeded", run["error"]
    assert run["progress"] == {"done": 10, "total": 10, "message": "crunching"}


def test_any_method_runs_a_background_function_preflights_and_link_checks_too(client: TestClient) -> None:
    """As on Netlify: the README says so where it describes invocation, with what to do instead."""
    for method in ("OPTIONS", "HEAD"):
        answer = client.request(method, "/.netlify/functions/echo-background", headers={"origin": "https://a.test"})
        assert answer.status_code == 202, (method, answer.text)
        run = client.get(answer.headers["location"]).json()
        assert run["trigger"] == "http" and run["status"] in ("queued", "running", "succeeded"), run
    invocation = " ".join(between("Netlify-compatible invocation, any method", "Management API").split())
    for said in ("`OPTIONS`", "`HEAD`", "CORS preflight", "same origin"):
        assert said in invocation, f"the README's HTTP API section does not say {said}"


def test_the_cli_section_says_which_trigger_invoke_records() -> None:
    cli = " ".join(between("## CLI", "## Deploying").split())
    assert "`invoke NAME` calls the function's Netlify URL" in cli
    assert "records `trigger: http`" in cli and "`--delay` or `--at`" in cli and "records `trigger: api`" in cli
