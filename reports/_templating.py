"""The jinja2 environment: built once per set of template folders, site folders first."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    TemplateError,
    TemplateSyntaxError,
)

from reports.errors import ReportError
from reports.formatting import format_number, format_percent

TEMPLATE = "report.html.j2"
"""The page template; a site overrides it by shipping a file of this name in a template folder."""


TemplateDirs = str | Path | Iterable[str | Path] | None
"""Site template folders: one path or several, searched in order before the built-in templates."""


def template_dirs(dirs: TemplateDirs) -> tuple[str, ...]:
    """Normalise and check site template folders at declaration time, so a typo fails early."""
    if dirs is None:
        return ()
    if isinstance(dirs, str | Path):
        dirs = [dirs]
    resolved: list[str] = []
    for entry in dirs:
        path = Path(entry).expanduser().resolve()
        if not path.is_dir():
            raise ReportError("template folder does not exist", source=str(entry), retriable=False)
        resolved.append(str(path))
    return tuple(resolved)


@functools.lru_cache(maxsize=32)
def environment(dirs: tuple[str, ...] = ()) -> Environment:
    """The shared environment for ``dirs``; cached because building one re-parses every template.

    Autoescaping is on for everything and undefined names raise, so a typo in a custom template is
    an error rather than a silently empty page.
    """
    loaders: list[BaseLoader] = [FileSystemLoader(list(dirs))] if dirs else []
    loaders.append(PackageLoader("reports", "templates"))
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["number"] = format_number
    env.filters["percent"] = format_percent
    return env


def render(name: str, dirs: tuple[str, ...], context: Mapping[str, Any]) -> str:
    """Render template ``name``; any jinja error becomes a ReportError naming the template line."""
    try:
        return environment(dirs).get_template(name).render(context)
    except TemplateError as err:
        raise ReportError(
            f"cannot render template: {err.message or err}", source=_where(name, err), retriable=False
        ) from err


def _where(name: str, err: TemplateError) -> str:
    if isinstance(err, TemplateSyntaxError) and err.filename:
        return f"{err.filename}:{err.lineno}"
    where, tb = name, err.__traceback__
    while tb is not None:  # jinja maps template lines into the traceback; keep the innermost
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith((".j2", ".html", ".css")):
            where = f"{filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where
