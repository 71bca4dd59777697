"""TOML helpers for the site loader: where a key is written, and Netlify's pattern merging.

tomllib gives values but no positions, so ``KeyLines`` re-reads the text line by line to find the
line of a table header or key assignment; that is enough to point ``backburner check`` at the fix.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Iterable, Mapping
from typing import Any

_BARE = r"[A-Za-z0-9_-]+"
_QUOTED = r"\"(?:[^\"\\]|\\.)*\"|'[^']*'"
_PART = rf"(?:{_BARE}|{_QUOTED})"
_HEADER = re.compile(rf"^\s*(\[\[?\s*{_PART}(?:\s*\.\s*{_PART})*\s*\]\]?)\s*(?:#.*)?$")
_KEY = re.compile(rf"^\s*({_PART}(?:\s*\.\s*{_PART})*)\s*=")
_ERROR_LINE = re.compile(r"\(at line (\d+), column \d+\)")

KeyPath = tuple[str, ...]


def error_line(error: tomllib.TOMLDecodeError, text: str) -> int:
    """The line a TOML syntax error is on (tomllib only says so in its message before Python 3.14)."""
    match = _ERROR_LINE.search(str(error))
    return int(match.group(1)) if match else max(1, len(text.splitlines()))


def _dotted_path(snippet: str) -> KeyPath | None:
    """Let tomllib itself unquote a header or key (``[functions."x"]``, ``"x".schedule = 0``)."""
    try:
        node: Any = tomllib.loads(snippet)
    except tomllib.TOMLDecodeError:
        return None
    path: list[str] = []
    while isinstance(node, dict) and node:
        key = next(iter(node))
        path.append(key)
        node = node[key]
        if isinstance(node, list):
            node = node[-1]
    return tuple(path)


class KeyLines:
    """The first line each table and key path is written on in a TOML text (and every ``[[array]]`` entry's)."""

    def __init__(self, text: str) -> None:
        self._lines: dict[KeyPath, int] = {}
        self._entries: dict[KeyPath, list[int]] = {}
        table: KeyPath = ()
        in_string = False
        for number, line in enumerate(text.splitlines(), start=1):
            starts_in_string = in_string
            if (line.count('"""') + line.count("'''")) % 2:
                in_string = not in_string
            if starts_in_string:
                continue
            header = _HEADER.match(line)
            if header:
                table = _dotted_path(header.group(1)) or table
                self._remember(table, number)
                if header.group(1).startswith("[["):
                    self._entries.setdefault(table, []).append(number)
                continue
            key = _KEY.match(line)
            if key:
                self._remember(table + (_dotted_path(f"{key.group(1)} = 0") or ()), number)

    def _remember(self, path: KeyPath, number: int) -> None:
        for end in range(1, len(path) + 1):
            self._lines.setdefault(path[:end], number)

    def entries(self, *path: str) -> list[int]:
        """The header line of each ``[[path]]`` entry, in order (empty for an inline array)."""
        return list(self._entries.get(path, ()))

    def find(self, *path: str) -> int | None:
        """The line of ``path``, else of its nearest enclosing table that is written down."""
        for end in range(len(path), 0, -1):
            number = self._lines.get(path[:end])
            if number is not None:
                return number
        return None


def pattern_weight(pattern: str) -> int:
    """Netlify's specificity of a ``[functions]`` pattern: ``"*"`` < ``"net*"`` < ``"netlify"``."""
    wildcards = pattern.count("*")
    return len(pattern) - wildcards - (1 if wildcards else 0)


def is_glob(pattern: str) -> bool:
    """Whether a pattern can match more than one function name."""
    return any(char in pattern for char in "*?[")


def merge(base: Mapping[str, Any], over: Mapping[str, Any], replace: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Merge like Netlify's merge-options: ``over`` wins for scalars, lists concatenate, tables merge.

    Keys in ``replace`` are taken whole from ``over`` even when they are lists.
    """
    result = dict(base)
    for key, value in over.items():
        old = result.get(key)
        if key not in replace and isinstance(old, list) and isinstance(value, list):
            result[key] = old + value
        elif key not in replace and isinstance(old, dict) and isinstance(value, dict):
            result[key] = merge(old, value)
        else:
            result[key] = value
    return result


def merged_for(
    name: str, layers: Iterable[tuple[str, Mapping[str, Any]]], replace: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """Merge every layer whose pattern matches ``name``, least specific first."""
    result: dict[str, Any] = {}
    for pattern, values in sorted(layers, key=lambda layer: pattern_weight(layer[0])):
        if fnmatch.fnmatchcase(name, pattern):
            result = merge(result, values, replace)
    return result
