"""What ships: the files the code reads at run time (the Lua scripts) are in the wheel and load from an install."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("backburner", "jobs", "scheduler", "api", "reports")
SCRIPTS = sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.lua"))


def test_every_lua_script_opens_with_what_it_takes() -> None:
    """Each script names itself, then its KEYS and ARGV, in its opening comment: no anonymous arguments."""
    assert SCRIPTS, "no .lua files found"
    for path in SCRIPTS:
        lines = path.read_text(encoding="utf-8").splitlines()
        head = "\n".join(line for line in lines[: next(n for n, line in enumerate(lines) if not line.startswith("--"))])
        assert head.startswith(f"-- {path.name}: "), f"{path}: the first line should say what the script does"
        for used in sorted(set(re.findall(r"\b(KEYS|ARGV)\[", path.read_text()))):
            assert f"-- {used}[" in head, f"{path}: uses {used} but its opening comment does not name them"


def test_the_wheel_ships_the_lua_scripts_and_an_install_loads_them(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in PACKAGES:  # a copy, so the build leaves no build/ or egg-info in the working tree
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    build = [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run([*build, "-q", "-w", str(tmp_path / "dist")], check=True, capture_output=True, timeout=240)
    [wheel] = (tmp_path / "dist").glob("backburner-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    missing = [p.relative_to(ROOT).as_posix() for p in SCRIPTS if p.relative_to(ROOT).as_posix() not in shipped]
    assert not missing, f"not in the wheel: {missing} (pyproject.toml [tool.setuptools.package-data])"
    assert "backburner/py.typed" in shipped, "PEP 561 marker missing: apps' type checkers would ignore the client"

    installed = tmp_path / "installed"  # a pure-Python wheel installs by unpacking it
    zipfile.ZipFile(wheel).extractall(installed)
    probe = (
        "import jobs.scripts as s, scheduler.leader as l; "
        "print(s.__file__, l.__file__, len(s.CAS_SCRIPT), len(s.lua('renew_lease', 'scheduler')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], env={"PYTHONPATH": str(installed)}, cwd=tmp_path,
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout.split()  # fmt: skip
    assert all(Path(path).is_relative_to(installed) for path in out[:2]), out
    assert int(out[2]) > 0 and int(out[3]) > 0


def test_the_client_is_clean_under_mypy_strict() -> None:
    """Apps that type-check strictly import backburner.client (typed: backburner/py.typed)."""
    assert (ROOT / "backburner" / "py.typed").is_file()
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "backburner/client"],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout
