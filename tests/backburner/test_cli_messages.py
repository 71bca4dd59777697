"""What the CLI tells a person, against a real API (and worker): states named as everywhere else, and why a
run did not succeed."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from backburner.client import Client
from tests.support.servers import ApiProc


@pytest.fixture
def api(site: Path, env: dict[str, str]) -> Iterator[ApiProc]:
    proc = ApiProc(site, env).start()
    yield proc
    proc.stop()


def cli(api: ApiProc, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BACKBURNER_URL": api.url, "COLUMNS": "200"}
    command = [sys.executable, "-m", "backburner", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def test_schedules_pause_and_resume_name_the_states_as_the_listing_does(api: ApiProc) -> None:
    with Client(api.url) as client:
        client.create_schedule("nightly", "echo-background", "0 3 * * *")
    paused = cli(api, "schedules", "pause", "nightly")
    assert paused.returncode == 0 and paused.stderr.strip() == "nightly: paused", paused.stderr
    resumed = cli(api, "schedules", "resume", "nightly")
    assert resumed.returncode == 0 and resumed.stderr.strip() == "nightly: active", resumed.stderr
