"""The site model: netlify.toml plus the functions directory, read without running user code.

Backburner reads the same netlify.toml that Netlify deploys, so the rules are Netlify's (DESIGN.md
section 3): where functions live, which names are background functions, how ``[functions]`` tables
and globs merge. Backburner's own keys sit under ``[backburner]`` so the file still deploys on
Netlify. ``check_site`` collects every problem for ``backburner check``; ``load_site`` raises on them.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from jobs import _site_values as _values
from jobs import _toml
from jobs._site_values import BACKBURNER_KEYS, CATCHUP_CHOICES, INLINE_KEYS, NETLIFY_KEYS, OVERLAP_CHOICES
from jobs.errors import ConfigError, FunctionNotFound

SYNC_TIME_LIMIT_S = 60.0
BACKGROUND_TIME_LIMIT_S = 900.0
SCHEDULED_TIME_LIMIT_S = 30.0
SYNC_BODY_LIMIT = 6 * 1024 * 1024
BACKGROUND_BODY_LIMIT = 256 * 1024
DEFAULT_RETRY_DELAYS_S = (60.0, 120.0)
DEFAULT_CATCHUP_WINDOW_S = 3600.0

Trigger = Literal["http", "api", "schedule", "replay"]

CONFIG_FILE = "netlify.toml"
DEFAULT_FUNCTIONS_DIR = "netlify/functions"
BACKGROUND_SUFFIX = "-background"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")
#: A retry schedule is one list; concatenating two of them would make no sense.
_REPLACED = frozenset({"retries"})


@dataclass(frozen=True)
class Limits:
    """What one attempt of a function may use, for the trigger that started it."""

    time_limit_s: float
    retry_delays_s: tuple[float, ...]
    body_limit: int


@dataclass(frozen=True)
class Function:
    """One function of the site with its merged configuration (TOML tables, then inline config)."""

    name: str
    path: Path
    background: bool
    schedule: str | None
    timezone: str
    time_limit_s: float | None
    retry_delays_s: tuple[float, ...] | None
    overlap: str
    catchup: str
    catchup_window_s: float
    concurrency: int | None
    on_success: tuple[str, ...]
    on_failure: tuple[str, ...]
    artifacts: str | None
    retention_s: float | None
    config: Mapping[str, Any] = field(hash=False)

    @property
    def kind(self) -> Literal["sync", "background"]:
        """Netlify's two invocation modes: answer with the response, or 202 and run later."""
        return "background" if self.background else "sync"

    def limits(self, trigger: Trigger) -> Limits:
        """Netlify's defaults for the kind (and for scheduled sync runs), unless configured."""
        if self.background:
            retries: tuple[float, ...]
            time_limit, retries, body = BACKGROUND_TIME_LIMIT_S, DEFAULT_RETRY_DELAYS_S, BACKGROUND_BODY_LIMIT
        elif trigger == "schedule":
            time_limit, retries, body = SCHEDULED_TIME_LIMIT_S, (), SYNC_BODY_LIMIT
        else:
            time_limit, retries, body = SYNC_TIME_LIMIT_S, (), SYNC_BODY_LIMIT
        return Limits(
            time_limit_s=time_limit if self.time_limit_s is None else self.time_limit_s,
            retry_delays_s=retries if self.retry_delays_s is None else self.retry_delays_s,
            body_limit=body,
        )


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the site, located as precisely as we can (file relative to the root)."""

    file: str
    line: int | None
    key: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return ": ".join(part for part in (where, self.key, self.message) if part)


@dataclass(frozen=True)
class Site:
    """A loaded site: its root, config file, functions directory and functions by name."""

    root: Path
    config_file: Path | None
    functions_dir: Path
    functions: Mapping[str, Function] = field(hash=False)
    settings: Mapping[str, Any] = field(hash=False)

    def get(self, name: str) -> Function:
        """The function called ``name``; raises ``FunctionNotFound`` so the API can answer 404."""
        try:
            return self.functions[name]
        except KeyError:
            raise FunctionNotFound(name) from None


def check_site(root: Path | str) -> tuple[Site | None, list[Problem]]:
    """Load everything, collecting ALL problems (not just the first).

    The site is None only if it cannot be built at all (no root, unreadable netlify.toml).
    """
    loader = _Loader(Path(root))
    site = loader.load()
    in_order = sorted(loader.problems, key=lambda p: (p.file != CONFIG_FILE, p.file, p.line or 0))
    return site, in_order


def load_site(root: Path | str) -> Site:
    """``check_site``, raising ``ConfigError`` built from the first problem (and counting the rest)."""
    site, problems = check_site(root)
    if problems:
        first, more = problems[0], len(problems) - 1
        message = f"{first.key}: {first.message}" if first.key else first.message
        if more:
            message += f" (and {more} more; run `backburner check` to see them all)"
        raise ConfigError(message, file=first.file, line=first.line)
    if site is None:  # pragma: no cover - check_site always explains a missing site
        raise ConfigError("the site could not be loaded", file=str(root))
    return site


def _who(pattern: str) -> str:
    """Whom a table applies to, in words, for messages about its values."""
    if pattern == "*":
        return "every function"
    return f"functions matching {pattern!r}" if _toml.is_glob(pattern) else f"function {pattern!r}"


@dataclass(frozen=True)
class _Where:
    """Where a table of values is written, so each bad value can be pointed at."""

    file: Path
    who: str
    key: Callable[[str], str]
    line: Callable[[str], int | None]


def _entry_file(folder: Path) -> Path | None:
    """A folder is a function if it has NAME/NAME.py or NAME/index.py (in Netlify's order)."""
    for candidate in (folder / f"{folder.name}.py", folder / "index.py"):
        if candidate.is_file():
            return candidate
    return None


def _get_any_case(table: Mapping[str, Any], name: str) -> tuple[str | None, Any]:
    """Netlify lower-cases [build] keys, so ``[Build] Functions`` counts as ``[build] functions``."""
    for key, value in table.items():
        if key.lower() == name:
            return key, value
    return None, None


class _Loader:
    """One pass over a site that records problems instead of stopping at the first."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.problems: list[Problem] = []
        self.config_file: Path | None = None
        self.data: dict[str, Any] = {}
        self.lines = _toml.KeyLines("")
        self.broken = False

    def load(self) -> Site | None:
        """Read config, then functions; None when the root or netlify.toml is unusable."""
        if not self.root.is_dir():
            self.report(self.root, None, None, "the site root is not a directory; pass --site DIR")
            return None
        self.read_config()
        directory, setting = self.functions_dir()
        netlify = self.netlify_layers()
        settings, backburner = self.backburner_layers()
        functions: dict[str, Function] = {}
        if directory.is_dir():
            for name, path in self.discover(directory):
                functions[name] = self.build(name, path, netlify + backburner)
        elif setting:
            shown = ".".join(setting)
            message = f"folder {self.show(directory)!r} does not exist; create it or fix {shown}"
            self.report_toml(setting, shown, message)
        if self.broken:
            return None
        return Site(
            root=self.root,
            config_file=self.config_file,
            functions_dir=directory,
            functions=MappingProxyType(dict(sorted(functions.items()))),
            settings=MappingProxyType(settings),
        )

    def show(self, file: Path) -> str:
        """Paths in problems are relative to the site root, as people write them."""
        try:
            return file.relative_to(self.root).as_posix()
        except ValueError:
            return str(file)

    def report(self, file: Path, line: int | None, key: str | None, message: str) -> None:
        self.problems.append(Problem(self.show(file), line, key, message))

    def report_toml(self, path: tuple[str, ...], key: str, message: str) -> None:
        self.report(self.root / CONFIG_FILE, self.lines.find(*path), key, message)

    def read_config(self) -> None:
        path = self.root / CONFIG_FILE
        if not path.is_file():
            return
        self.config_file = path
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            self.broken = True
            self.report(path, None, None, f"cannot be read: {error}")
            return
        try:
            self.data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            self.broken = True
            self.report(path, _toml.error_line(error, text), None, f"is not valid TOML: {error}")
            return
        self.lines = _toml.KeyLines(text)

    def table(self, *path: str) -> dict[str, Any]:
        value: Any = self.data
        for part in path:
            value = value.get(part, {}) if isinstance(value, dict) else {}
        if isinstance(value, dict):
            return value
        shown = ".".join(path)
        self.report_toml(path, shown, f"must be a table: write [{shown}] and put its keys under it")
        return {}

    def functions_dir(self) -> tuple[Path, tuple[str, str] | None]:
        """``[functions] directory``, else legacy ``[build] functions``, else the default.

        Also returns the key that chose the folder, so a missing folder can be pointed at.
        """
        functions = self.data.get("functions")
        directory = functions.get("directory") if isinstance(functions, dict) else None
        if directory is not None and not isinstance(directory, dict):
            return self.dir_setting(directory, ("functions", "directory"))
        build_key, build = _get_any_case(self.data, "build")
        if build_key and isinstance(build, dict):
            key, value = _get_any_case(build, "functions")
            if key is not None:
                return self.dir_setting(value, (build_key, key))
        return self.root / DEFAULT_FUNCTIONS_DIR, None

    def dir_setting(self, value: Any, path: tuple[str, str]) -> tuple[Path, tuple[str, str] | None]:
        if isinstance(value, str) and value.strip():
            return self.root / value, path
        message = f"{value!r} must be a folder relative to the site root, e.g. {DEFAULT_FUNCTIONS_DIR!r}"
        self.report_toml(path, ".".join(path), message)
        return self.root / DEFAULT_FUNCTIONS_DIR, None

    def toml_where(self, prefix: tuple[str, ...], pattern: str | None) -> _Where:
        """Values of a pattern table (or, with ``pattern`` None, of the global table ``prefix``)."""
        shown = ".".join(prefix) if pattern is None else ".".join(prefix[:-1]) + f'."{pattern}"'
        return _Where(
            file=self.root / CONFIG_FILE,
            who=_who(pattern or "*"),
            key=lambda key: f"{shown}.{key}",
            line=lambda key: self.lines.find(*prefix, key),
        )

    def checked(self, values: Mapping[str, Any], where: _Where) -> dict[str, Any]:
        """The values Backburner can use; every other one becomes a problem."""
        good: dict[str, Any] = {}
        for key, value in values.items():
            message = _values.value_error(key, value, where.who)
            if message:
                self.report(where.file, where.line(key), where.key(key), message)
            elif key in ("on_success", "on_failure") and isinstance(value, str):
                good[key] = [value]  # so a single URL concatenates with lists from other tables
            else:
                good[key] = value
        return good

    def netlify_layers(self) -> list[tuple[str, dict[str, Any]]]:
        """``[functions]`` split as Netlify does: non-table known keys are for all, tables are patterns."""
        everyone: dict[str, Any] = {}
        layers: list[tuple[str, dict[str, Any]]] = []
        for key, value in self.table("functions").items():
            if isinstance(value, dict):
                prefix = ("functions", key)
                values = {k: v for k, v in value.items() if not self.reject_backburner_key(prefix, k, key)}
                layers.append((key, self.checked(values, self.toml_where(prefix, key))))
            elif key in NETLIFY_KEYS:
                if key != "directory":
                    everyone[key] = value
            elif not self.reject_backburner_key(("functions",), key, "*"):
                message = (
                    f"'{key}' is not a [functions] setting (known: {', '.join(sorted(NETLIFY_KEYS))}); "
                    f'to configure a function called {key!r} write [functions."{key}"]'
                )
                self.report_toml(("functions", key), f"functions.{key}", message)
        return [("*", self.checked(everyone, self.toml_where(("functions",), None))), *layers]

    def reject_backburner_key(self, prefix: tuple[str, ...], key: str, pattern: str) -> bool:
        """Backburner keys under [functions] would reach Netlify; point them to [backburner]."""
        if key not in BACKBURNER_KEYS:
            return False
        shown = f"functions.{key}" if len(prefix) == 1 else f'functions."{pattern}".{key}'
        self.report_toml((*prefix, key), shown, str(_values.misplaced_hint(key, pattern)))
        return True

    def backburner_layers(self) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
        """Site settings, and the ``[backburner]`` / ``[backburner.functions."pattern"]`` layers."""
        table = self.table("backburner")
        settings = {key: value for key, value in table.items() if key != "functions"}
        everyone = {key: value for key, value in settings.items() if key in BACKBURNER_KEYS}
        layers = [("*", self.checked(everyone, self.toml_where(("backburner",), None)))]
        for pattern, values in self.table("backburner", "functions").items():
            prefix = ("backburner", "functions", pattern)
            shown = f'backburner.functions."{pattern}"'
            if not isinstance(values, dict):
                self.report_toml(prefix, shown, f"must be a table: write [{shown}] and put its keys under it")
                continue
            for key in [key for key in values if key not in BACKBURNER_KEYS]:
                hint = _values.misplaced_hint(key, pattern) or f"known keys are {', '.join(BACKBURNER_KEYS)}"
                self.report_toml((*prefix, key), f"{shown}.{key}", f"unknown key '{key}'; {hint}")
            known = {key: value for key, value in values.items() if key in BACKBURNER_KEYS}
            layers.append((pattern, self.checked(known, self.toml_where(prefix, pattern))))
        return settings, layers

    def discover(self, directory: Path) -> list[tuple[str, Path]]:
        """NAME.py, NAME/NAME.py or NAME/index.py; a folder beats a file; ``_x``/``.x`` are shared code."""
        found: dict[str, Path] = {}
        for entry in sorted(directory.iterdir()):
            if entry.name.startswith(("_", ".")):
                continue
            if entry.is_dir():
                name, main = entry.name, _entry_file(entry)
            elif entry.suffix == ".py" and entry.is_file():
                name, main = entry.stem, entry
            else:
                continue
            if main is None:
                continue
            if not NAME_PATTERN.match(name):
                message = (
                    f"{name!r} is not a valid function name: Function name should consist only of "
                    "alphanumeric characters, hyphen & underscores. Rename it, or start it with '_' "
                    "if it is shared code"
                )
                self.report(entry, None, None, message)
            elif name not in found:  # NAME/ sorts before NAME.py, so a folder beats a file
                found[name] = main
        return sorted(found.items())

    def inline(self, name: str, path: Path) -> dict[str, Any]:
        """The function's module-level ``config`` literal, read with ``ast``; the code never runs."""
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except OSError as error:
            self.report(path, None, None, f"cannot be read: {error}")
            return {}
        except (SyntaxError, ValueError) as error:
            self.report(path, getattr(error, "lineno", None), None, f"is not valid Python: {error}")
            return {}
        node = _values.config_node(tree)
        if node is None:
            return {}
        try:
            value = ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            value = None
        if not isinstance(value, dict):
            message = (
                "config must be a literal dict (strings, numbers, booleans, lists and dicts only) so "
                'Backburner can read it without running your code, e.g. config = {"schedule": "@daily"}'
            )
            self.report(path, node.lineno, "config", message)
            return {}
        lines = _values.key_lines(node)
        values: dict[str, Any] = {}
        for key, item in value.items():
            if key not in INLINE_KEYS:
                hint = f"known keys are {', '.join(INLINE_KEYS)}"
                self.report(path, lines.get(key, node.lineno), f"config[{key!r}]", f"unknown key; {hint}")
            elif item is not None:
                values[key] = item
        where = _Where(path, _who(name), lambda key: f"config[{key!r}]", lambda key: lines.get(key, node.lineno))
        return self.checked(values, where)

    def build(self, name: str, path: Path, layers: list[tuple[str, dict[str, Any]]]) -> Function:
        """Merge the TOML layers that match, then inline config over them, into a Function."""
        merged = _toml.merge(_toml.merged_for(name, layers, _REPLACED), self.inline(name, path), _REPLACED)

        def get(key: str, default: Any = None) -> Any:
            return _values.PARSERS[key](merged[key]) if key in merged else default

        return Function(
            name=name,
            path=path,
            background=name.endswith(BACKGROUND_SUFFIX) or merged.get("background") is True,
            schedule=get("schedule"),
            timezone=get("timezone", "UTC"),
            time_limit_s=get("time_limit"),
            retry_delays_s=get("retries"),
            overlap=get("overlap", OVERLAP_CHOICES[0]),
            catchup=get("catchup", CATCHUP_CHOICES[0]),
            catchup_window_s=get("catchup_window", DEFAULT_CATCHUP_WINDOW_S),
            concurrency=get("concurrency"),
            on_success=get("on_success", ()),
            on_failure=get("on_failure", ()),
            artifacts=get("artifacts"),
            retention_s=get("retention"),
            config=MappingProxyType(merged),
        )
