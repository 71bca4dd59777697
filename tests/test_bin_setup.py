"""bin/_setup.py, the set-up step of bin/dev and bin/test, on a tiny project in a fresh folder: it says what it
does with timings and nothing else (pip's output goes to .venv/install.log); a failing install shows the end
of that log and exits 1.

(The real first run, minutes of downloads, is checked by hand in a clean clone; see the README.)
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = """
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "tiny"
version = "0.1.0"
dependencies = [{dependencies}]

[tool.setuptools]
py-modules = ["tiny"]
"""


def project(root: Path, dependencies: str = "") -> Path:
    (root / "bin").mkdir(parents=True)
    shutil.copy(ROOT / "bin" / "_setup.py", root / "bin" / "_setup.py")
    (root / "pyproject.toml").write_text(PYPROJECT.format(dependencies=dependencies))
    (root / "tiny.py").write_text("VALUE = 1\n")
    return root


def setup(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "bin/_setup.py", "", ".venv/.installed"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_first_set_up_says_each_step_with_its_time_and_nothing_else(tmp_path):
    root = project(tmp_path / "tiny")
    done = setup(root)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    patterns = [
        r"Setting up Backburner in \.venv \(first run only: a few minutes, mostly downloads\)",
        r"  creating \.venv with Python 3\.\d+\.\d+ \.\.\. done in \d+\.\d s",
        r"  resolving and downloading the dependencies of \. \.\.\. \d+ packages? in \d+\.\d s",
        r"  installing tiny \.\.\. done in \d+\.\d s",
        r"Ready in \d+\.\d s \(pip's output: \.venv/install\.log\)",
        r"",
    ]
    assert len(lines) == len(patterns), done.stderr
    for line, pattern in zip(lines, patterns, strict=True):
        assert re.fullmatch(pattern, line), (line, pattern)
    log = (root / ".venv" / "install.log").read_text()
    assert "Successfully installed tiny-0.1.0" in log  # pip said it all, into the log
    assert "warning" not in done.stderr.lower()  # setuptools' notes on editable installs stay in the log
    assert (root / ".venv" / ".installed").exists()
    imported = subprocess.run([str(root / ".venv" / "bin" / "python"), "-c", "import tiny; print(tiny.VALUE)"],
                              cwd="/", capture_output=True, text=True)  # fmt: skip
    assert imported.stdout.strip() == "1"
    again = setup(root)  # an existing environment is updated, and says so
    assert again.returncode == 0 and again.stderr.startswith("Updating .venv: pyproject.toml changed since")


def test_a_failing_install_shows_the_end_of_pips_output_and_exits_1(tmp_path):
    root = project(tmp_path / "tiny", dependencies='"missing @ file:///nonexistent/backburner-test/missing"')
    done = setup(root)
    assert done.returncode == 1
    assert "FAILED in" in done.stderr
    assert "pip install -e . failed (exit code 1). The end of its output:" in done.stderr
    assert "nonexistent/backburner-test/missing" in done.stderr  # pip's own words about the cause
    assert "The whole output is in .venv/install.log." in done.stderr
    assert not (root / ".venv" / ".installed").exists()  # the next run tries again


def test_packages_are_counted_by_name_from_pips_lines(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT / "bin"))
    from _setup import package

    lines = {
        "Collecting dramatiq[redis]<2.3,>=2.0 (from backburner==0.1.0)": "dramatiq",
        "Collecting tzdata": "tzdata",
        "Requirement already satisfied: redis[hiredis]<9,>=5 in ./.venv/lib/python3.11/site-packages (7.1.0)": "redis",
        "Processing /opt/wheels/typing_extensions-4.16.0-py3-none-any.whl (from fastapi)": "typing-extensions",
        f"Processing {tmp_path}": None,  # the project itself
        "  Downloading fastapi-0.120.0-py3-none-any.whl (108 kB)": None,
        "Installing collected packages: a, b": None,
    }
    assert {line: package(line) for line in lines} == lines
