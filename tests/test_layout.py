"""The house rules of the code base (DESIGN.md section 1), checked on every test run.

No import cycles, counting imports made inside functions; imports flow one way between the packages;
no module over 400 lines; a small flat core in jobs/.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("backburner", "jobs", "scheduler", "api", "reports")
#: Which packages each package may import (DESIGN.md: backburner -> api, scheduler, jobs; api -> jobs; ...).
ALLOWED = {
    "backburner": {"api", "scheduler", "jobs", "reports"},
    "api": {"jobs"},
    "scheduler": {"jobs"},
    "jobs": {"reports"},
    "reports": set(),
}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules ``name`` imports anywhere in its file (inside functions and TYPE_CHECKING too)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            anchor = package[: len(package) - node.level + 1] if node.level else []
            prefix = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                submodule = f"{prefix}.{alias.name}"
                if submodule in modules:
                    targets.add(submodule)  # `from . import x`: the module x, not its package
                elif prefix in modules:
                    targets.add(prefix)
    targets.discard(name)
    return targets


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        pytest.fail("import cycle: " + " -> ".join(error.args[1]))


def test_imports_flow_one_way(graph: dict[str, set[str]]) -> None:
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        for target in targets
        if (a := module.split(".")[0]) != (b := target.split(".")[0]) and b not in ALLOWED[a]
    )
    assert not wrong


def test_modules_stay_small() -> None:
    big = {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > 400}
    assert not big


def test_jobs_has_a_small_flat_core() -> None:
    flat = [p.name for p in (ROOT / "jobs").glob("*.py")]
    assert len(flat) <= 20, sorted(flat)
