"""What the CLI prints when the input, the terminal or the user gets in the way: one clear line, never a
traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.servers import free_port


def run_cli(*args: str, url: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BACKBURNER_URL": url or f"http://127.0.0.1:{free_port()}", "COLUMNS": "200"}
    command = [sys.executable, "-m", "backburner", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, cwd=cwd)


@pytest.mark.parametrize("command", [["invoke", "echo"], ["replay", "01JD3Z5W6X7Y8Z9A0B1C2D3E4F"]])
def test_data_from_a_file_that_cannot_be_read_is_a_usage_error(tmp_path: Path, command: list[str]) -> None:
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"name": "Jos\xe9"}')
    cases = {
        str(tmp_path / "missing.json"): "No such file or directory",
        str(tmp_path): "Is a directory",
        str(latin): "not UTF-8 text (invalid continuation byte)",
    }
    for name, why in cases.items():
        done = run_cli(*command, "--data", f"@{name}")
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert f"Error: Invalid value for --data: cannot read {name}: {why}" in done.stderr.splitlines(), done.stderr
