"""Set up .venv for bin/dev and bin/test, saying what happens while it happens, with timings.

Run by bin/_venv.sh with the Python that will own the environment (3.11+, checked there), standard library
only. pip's own output (its progress, its warnings, setuptools' notes about editable installs) goes to
.venv/install.log and is shown only when a step fails: a newcomer sees the steps, not the noise.

    python3 bin/_setup.py EXTRAS STAMP
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

VENV = Path(".venv")
LOG = VENV / "install.log"
#: How pip names each package it resolves: from an index, a local wheel or folder, or already there.
_FOUND = (("Collecting ", 1), ("Requirement already satisfied: ", 3), ("Processing ", 1))
_NAME_END = re.compile(r"[\s\[<>=!~;(@]")


def package(line: str) -> str | None:
    """The package a line of pip's output is about, if it is one of the lines that name one."""
    for prefix, index in _FOUND:
        if line.startswith(prefix):
            words = line.split()
            if len(words) <= index:
                return None
            word = words[index]
            if prefix == "Processing ":  # a path: a wheel's name comes first in its file name
                if Path(word).resolve() == Path.cwd().resolve():
                    return None  # the project itself
                word = Path(word).name.split("-")[0]
            return _NAME_END.split(word, 1)[0].lower().replace("_", "-")
    return None


_INSTALLING = "Installing collected packages: "
_LIVE = sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


def say(text: str, end: str = "\n") -> None:
    sys.stderr.write(text + end)
    sys.stderr.flush()


def project_name() -> str:
    """The project's name in pyproject.toml, as pip lists it."""
    try:
        with open("pyproject.toml", "rb") as file:
            return str(tomllib.load(file)["project"]["name"]).lower().replace("_", "-")
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return ""


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def took(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"


class Step:
    """One line on the terminal: ``  label ... outcome``, kept current while the step runs on a terminal."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.note = ""
        self.started = time.monotonic()
        self._done = threading.Event()
        if _LIVE:
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()
        else:
            say(f"  {label} ...", end=" ")

    def _line(self) -> str:
        elapsed = time.monotonic() - self.started
        note = f"{self.note}, " if self.note else ""
        return f"  {self.label} ... {note}{took(elapsed)}"

    def _tick(self) -> None:
        while not self._done.wait(0.5):
            width = shutil.get_terminal_size().columns - 1  # a wrapped line could not be redrawn in place
            say("\r\033[K" + self._line()[:width], end="")

    def finish(self, outcome: str) -> float:
        self._done.set()
        elapsed = time.monotonic() - self.started
        text = f"{outcome} in {took(elapsed)}"
        say(f"\r\033[K  {self.label} ... {text}" if _LIVE else text)
        return elapsed


def run_logged(args: list[str], on_line: Callable[[str], None] = lambda line: None) -> int:
    """Run ``args`` with its output appended to the log, line by line; return its exit code."""
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", "PYTHONWARNINGS": "ignore"}
    with LOG.open("a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(args)}\n")
        log.flush()
        process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, env=env
        )
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            on_line(line.rstrip("\n"))
        return process.wait()


def fail(step: Step, what: str, code: int) -> None:
    step.finish("FAILED")
    lines = LOG.read_text(encoding="utf-8", errors="replace").splitlines()[-25:] if LOG.exists() else []
    say(f"\n{what} failed (exit code {code}). The end of its output:\n")
    for line in lines:
        say(f"    {line}")
    say(f"\nThe whole output is in {LOG}. Fix the cause and run the command again; it resumes from here.")
    sys.exit(1)


def create_venv() -> None:
    version = ".".join(map(str, sys.version_info[:3]))
    step = Step(f"creating .venv with Python {version}")
    # The log lives inside .venv, which does not exist yet: let venv create it first, then log into it.
    result = subprocess.run([sys.executable, "-m", "venv", str(VENV)], capture_output=True, text=True)
    if result.returncode != 0:
        step.finish("FAILED")
        say(result.stdout + result.stderr)
        say("Could not create .venv. On Debian or Ubuntu: sudo apt-get install python3-venv; then run this again.")
        sys.exit(1)
    step.finish("done")


def install(extras: str) -> int:
    """``pip install -e .EXTRAS`` in two steps on screen: fetching (counted) and installing (N packages)."""
    target = f".{extras}"
    fetching = Step(f"resolving and downloading the dependencies of {target}")
    found: set[str] = set()
    state: dict[str, Step | int] = {}

    def on_line(line: str) -> None:
        name = package(line)
        if name:
            found.add(name)
            fetching.note = plural(len(found), "package")
        elif line.startswith(_INSTALLING):
            names = [name.strip().lower().replace("_", "-") for name in line[len(_INSTALLING) :].split(",")]
            fetching.finish(plural(len(found), "package"))
            state["count"] = len(names)
            project = project_name()
            label = f"installing {plural(len(names), 'package')}"
            if project in names:  # the project itself is not one of the packages resolved above
                others = len(names) - 1
                label = f"installing {plural(others, 'package')} and {project}" if others else f"installing {project}"
            state["step"] = Step(label)

    code = run_logged([str(VENV / "bin" / "python"), "-m", "pip", "install", "--progress-bar", "off", "-e", target],
                      on_line)  # fmt: skip
    current = state.get("step", fetching)
    assert isinstance(current, Step)
    if code != 0:
        fail(current, f"pip install -e {target}", code)
    if current is fetching:  # nothing to install: everything was there already
        fetching.finish(f"{plural(len(found), 'package')}, all installed already")
        return 0
    current.finish("done")
    count = state.get("count", 0)
    return count if isinstance(count, int) else 0


def main(extras: str, stamp: str) -> None:
    started = time.monotonic()
    fresh = not (VENV / "bin" / "python").exists()
    if fresh:
        say("Setting up Backburner in .venv (first run only: a few minutes, mostly downloads)")
        create_venv()
    elif Path(stamp).exists():
        say("Updating .venv: pyproject.toml changed since the last install")
    else:
        say(f"Updating .venv: installing {extras or 'the project'}, which this command needs")
    LOG.write_text("")
    install(extras)
    Path(stamp).touch()
    say(f"Ready in {took(time.monotonic() - started)} (pip's output: {LOG})\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
