"""Folders as Netlify reads them from netlify.toml (netlify/build ``packages/config``: case, files, base).

- ``[build]`` and its keys may be capitalised (``[Build]``, ``Functions``); the lower-case spelling wins,
  and no other spelling is Netlify's (``FUNCTIONS`` is an unknown key, so it is ignored).
- An empty or blank value is no value: the default applies.
- A value starting with ``/`` is relative anyway. Folders are relative to ``[build] base`` (itself relative
  to the site root), and none may leave the site root.
- The functions folder is ``[functions] directory``, else ``[build] functions``, else
  ``<base>/netlify/functions``; the publish folder (where ``_redirects`` lives) defaults to the base.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .model import DEFAULT_FUNCTIONS_DIR

#: Reports a problem: (key path in the TOML, key as shown, message).
Report = Callable[[tuple[str, ...], str, str], None]


def build_table(data: Mapping[str, Any]) -> tuple[tuple[str, ...], Any]:
    """Netlify's ``build``: ``[build]``, else ``[Build]`` (a ``[Build]`` beside ``[build]`` is ignored)."""
    for key in ("build", "Build"):
        if key in data:
            return (key,), data[key]
    return ("build",), {}


def build_value(build: Mapping[str, Any], name: str) -> tuple[str | None, Any]:
    """``name`` in the build table: ``functions``, else ``Functions``."""
    for key in (name, name.capitalize()):
        if key in build:
            return key, build[key]
    return None, None


def blank(value: Any) -> bool:
    """Netlify drops empty and whitespace-only strings, as if the key were not there."""
    return isinstance(value, str) and not value.strip()


def resolve(root: Path, base: Path, value: str) -> Path:
    """``value`` the way Netlify resolves it: leading slashes dropped, relative to ``base``, ``..`` folded;
    ValueError if the result is outside ``root``."""
    folder = Path(os.path.normpath(base / value.lstrip("/")))
    if not folder.is_relative_to(root):
        raise ValueError(
            f"{value!r} is outside the site root; folders must stay inside it "
            "(a leading '/' means the site root, as on Netlify), e.g. 'netlify/functions'"
        )
    return folder


class Folders:
    """The base, functions and publish folders of one netlify.toml, with a problem for each bad value."""

    def __init__(self, data: Mapping[str, Any], root: Path, report: Report) -> None:
        self.data, self.root, self.report = data, root, report
        self.build_path, build = build_table(data)
        if not isinstance(build, dict):
            shown = self.build_path[0]
            report(self.build_path, shown, f"must be a table: write [{shown}] and put its keys under it")
            build = {}
        self.build: dict[str, Any] = build

    def _setting(self, name: str) -> tuple[tuple[str, ...] | None, Any]:
        key, value = build_value(self.build, name)
        if key is None or blank(value):
            return None, None
        return (*self.build_path, key), value

    def _folder(self, path: tuple[str, ...], value: Any, base: Path, what: str) -> Path | None:
        shown = ".".join(path)
        if not isinstance(value, str):
            self.report(path, shown, f"{value!r} must be a folder name (a string), e.g. {what!r}")
            return None
        try:
            return resolve(self.root, base, value)
        except ValueError as error:
            self.report(path, shown, str(error))
            return None

    def base(self) -> Path:
        """``[build] base``: the folder other folders are relative to (the root by default)."""
        path, value = self._setting("base")
        if path is None:
            return self.root
        folder = self._folder(path, value, self.root, "site")
        if folder is None:
            return self.root
        if not folder.is_dir():
            shown = ".".join(path)
            self.report(path, shown, f"base folder {value!r} does not exist; create it or fix {shown}")
            return self.root
        return folder

    def functions(self, base: Path) -> tuple[Path, tuple[str, ...] | None]:
        """The functions folder and the key that chose it (None for the default)."""
        functions = self.data.get("functions")
        directory = functions.get("directory") if isinstance(functions, dict) else None
        if directory is not None and not isinstance(directory, dict):  # a table would be a function's
            path: tuple[str, ...] | None = ("functions", "directory")
            value = None if blank(directory) else directory  # "" still beats [build] functions, as on Netlify
        else:
            path, value = self._setting("functions")
        if path is None or value is None:
            return base / DEFAULT_FUNCTIONS_DIR, None
        folder = self._folder(path, value, base, DEFAULT_FUNCTIONS_DIR)
        return (base / DEFAULT_FUNCTIONS_DIR, None) if folder is None else (folder, path)

    def publish(self, base: Path) -> Path:
        """``[build] publish``: where Netlify reads ``_redirects`` (the base folder by default)."""
        path, value = self._setting("publish")
        if path is None:
            return base
        return self._folder(path, value, base, "dist") or base
