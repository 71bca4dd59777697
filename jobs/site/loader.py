"""Reading a site: netlify.toml, the functions folder and each function's inline config.

The public model and entry points (``check_site``, ``load_site``) are in ``jobs.site``; this module
does the reading and collects a Problem for everything wrong, with file, line and key.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from . import rules as _rules
from . import schedules as _schedules
from . import toml as _toml
from . import values as _values
from .model import (
    _REPLACED,
    BACKGROUND_SUFFIX,
    CONFIG_FILE,
    DEFAULT_CATCHUP_WINDOW_S,
    DEFAULT_MAX_RESULT,
    DEFAULT_MEMORY_LIMIT,
    NAME_PATTERN,
    Function,
    Problem,
    Site,
)
from .paths import Folders
from .routes import RouteTable
from .values import BACKBURNER_KEYS, CATCHUP_CHOICES, INLINE_KEYS, NETLIFY_KEYS, OVERLAP_CHOICES


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


class Loader:
    """One pass over a site that records problems instead of stopping at the first."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.problems: list[Problem] = []
        self.config_file: Path | None = None
        self.data: dict[str, Any] = {}
        self.lines = _toml.KeyLines("")
        self.broken = False
        #: Where each function's own ``path`` is written (file, line, key), for problems about it.
        self.path_where: dict[str, tuple[Path, int | None, str]] = {}

    def load(self) -> Site | None:
        """Read config, then functions; None when the root or netlify.toml is unusable."""
        if not self.root.is_dir():  # named in full: relative to itself, the root would read "."
            why = "is not a directory" if self.root.exists() else "does not exist"
            self.problems.append(Problem(str(self.root), None, None, f"the site root {why}; pass --site DIR"))
            return None
        self.read_config(self.root / CONFIG_FILE)
        folders = Folders(self.data, self.root, self.report_toml)
        base = folders.base()
        if base != self.root and (base / CONFIG_FILE).is_file() and not self.broken:
            # Netlify then reads the base folder's own netlify.toml instead (and ignores the base it names).
            self.read_config(base / CONFIG_FILE)
            folders = Folders(self.data, self.root, self.report_toml)
        directory, setting = folders.functions(base)
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
        self.schedules_without_function(netlify, functions, directory)
        publish, root_file = folders.publish(base), self.root / CONFIG_FILE
        routes = self.routes(functions, publish)
        declared = _schedules.declared(self.data, self.config_file, functions, self.report_schedule)
        if self.broken:
            return None
        return Site(
            root=self.root,
            config_file=self.config_file,
            functions_dir=directory,
            functions=MappingProxyType(dict(sorted(functions.items()))),
            settings=MappingProxyType(settings),
            routes=routes,
            sources=tuple(
                source for source in (base / CONFIG_FILE, publish / _rules.REDIRECTS_FILE) if source != root_file
            ),
            declared=declared,
        )

    def routes(self, functions: Mapping[str, Function], publish: Path) -> RouteTable:
        """``_redirects`` in the publish folder, then ``[[redirects]]``; and every function's own paths."""
        redirects = self.data.get("redirects")
        lines = self.lines.entries("redirects")
        config = self.show(self.config_file) if self.config_file else CONFIG_FILE
        toml, note = _rules.toml_rules(redirects, config, lines, self.lines.find("redirects"))
        notes = [f"{config}:{self.lines.find('redirects')}: redirects {note}"] if note else []
        from_file = _rules.file_rules(publish / _rules.REDIRECTS_FILE, self.show(publish / _rules.REDIRECTS_FILE))
        own = _rules.function_routes(functions, self.path_where, self.report)
        return RouteTable.build(_rules.merge(from_file, toml), own, notes)

    def show(self, file: Path) -> str:
        """Paths in problems are relative to the site root, as people write them."""
        try:
            return file.relative_to(self.root).as_posix()
        except ValueError:
            return str(file)

    def report(self, file: Path, line: int | None, key: str | None, message: str) -> None:
        self.problems.append(Problem(self.show(file), line, key, message))

    def report_toml(self, path: tuple[str, ...], key: str, message: str) -> None:
        self.report(self.config_file or self.root / CONFIG_FILE, self.lines.find(*path), key, message)

    def report_schedule(self, line: int | None, key: str, message: str) -> None:
        """A problem with a ``[[backburner.schedules]]`` entry (``jobs.site.schedules``), at its own line."""
        file = self.config_file or self.root / CONFIG_FILE
        self.report(file, line or self.lines.find("backburner", "schedules"), key, message)

    def read_config(self, path: Path) -> None:
        if not path.is_file():
            return
        self.config_file = path
        try:
            text = path.read_text(encoding="utf-8-sig")  # editors on Windows start files with a byte-order mark
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

    def toml_where(self, prefix: tuple[str, ...], pattern: str | None) -> _Where:
        """Values of a pattern table (or, with ``pattern`` None, of the global table ``prefix``)."""
        shown = ".".join(prefix) if pattern is None else ".".join(prefix[:-1]) + f'."{pattern}"'
        return _Where(
            file=self.config_file or self.root / CONFIG_FILE,
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
                for typo in [k for k in values if k not in NETLIFY_KEYS]:  # Netlify may know others: only typos
                    if guess := _values.did_you_mean(typo, NETLIFY_KEYS):
                        self.report_toml((*prefix, typo), f'functions."{key}".{typo}', f"unknown key '{typo}'{guess}")
                        del values[typo]
                if "path" in values and self.own_path(prefix, key):
                    del values["path"]
                layers.append((key, self.checked(values, self.toml_where(prefix, key))))
            elif key == "path":
                self.own_path(("functions",), "*")
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

    def schedules_without_function(
        self, netlify: list[tuple[str, dict[str, Any]]], functions: Mapping[str, Function], directory: Path
    ) -> None:
        """A schedule in ``[functions."name"]`` for a name that is a typo of a function's would never fire.

        A name like no function's is fine: Netlify deploys functions Backburner does not run (JavaScript ones).
        """
        for pattern, values in netlify:
            exact = pattern != "*" and not _toml.is_glob(pattern)
            if "schedule" in values and exact and pattern not in functions:
                guess = _values.did_you_mean(pattern, functions)
                if guess:
                    message = f"no function '{pattern}' in {self.show(directory)} for this schedule to run{guess}"
                    self.report_toml(("functions", pattern, "schedule"), f'functions."{pattern}".schedule', message)

    def own_path(self, table: tuple[str, ...], pattern: str) -> bool:
        """Remember where ``[functions."name"] path`` is written; True (a problem) for tables of many functions."""
        file = self.config_file or self.root / CONFIG_FILE
        key = ("functions" if len(table) == 1 else f'functions."{pattern}"') + ".path"
        line = self.lines.find(*table, "path")
        if pattern == "*" or _toml.is_glob(pattern):
            message = (
                f"a path routes requests to one function, so it cannot apply to {_who(pattern)}: "
                'write it under [functions."NAME"] for the function it belongs to'
            )
            self.report(file, line, key, message)
            return True
        self.path_where[pattern] = (file, line, key)
        return False

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
        settings = {key: value for key, value in table.items() if key not in ("functions", "schedules")}
        for key in [key for key in settings if key not in BACKBURNER_KEYS]:  # others are the site's own settings
            if guess := _values.did_you_mean(key, BACKBURNER_KEYS):  # but a typo of a key would be ignored
                message = f"unknown key '{key}'{guess}; known keys are {', '.join(BACKBURNER_KEYS)}"
                self.report_toml(("backburner", key), f"backburner.{key}", message)
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
                message = f"unknown key '{key}'{_values.did_you_mean(key, BACKBURNER_KEYS)}; {hint}"
                self.report_toml((*prefix, key), f"{shown}.{key}", message)
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
        if not _values.defines_handler(tree):
            self.report(path, None, "handler", "defines no handler; add def handler(event, context): ...")
        elif (problem := _values.handler_call_problem(tree)) is not None:
            self.report(path, problem[0], "handler", problem[1])
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
        if "path" in value:
            self.path_where[name] = (path, lines.get("path", node.lineno), "config['path']")
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
            routes=get("path", ()),
            memory_limit=get("memory_limit", DEFAULT_MEMORY_LIMIT),
            max_result=get("max_result", DEFAULT_MAX_RESULT),
            environment=MappingProxyType(get("environment", {})),
        )
