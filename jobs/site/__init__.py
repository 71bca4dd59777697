"""The site: netlify.toml plus the functions directory, read without running user code.

Backburner reads the same netlify.toml that Netlify deploys, so the rules are Netlify's (DESIGN.md
section 3): where functions live, which names are background functions, how ``[functions]`` tables
and globs merge. Backburner's own keys sit under ``[backburner]`` so the file still deploys on
Netlify. ``check_site`` collects every problem for ``backburner check``; ``load_site`` raises on them.

    model.py      Site, Function, Limits, Problem and Netlify's defaults (records only)
    loader.py     reading netlify.toml, the functions folder and inline configs into the model
    values.py     checking each configured value (durations, URLs, choices) where it is written
    toml.py       where a key is written (line numbers) and Netlify's pattern merging
    paths.py      folders as Netlify reads them: [build] key cases, empty values, base, the site root
    rules.py      redirect rules from _redirects and [[redirects]], and functions' own paths
    routes.py     the compiled route table: which function a request path reaches
    cron.py       Netlify's cron dialect in any time zone
    durations.py  "90s", "15m", "1h" as people write them
    sizes.py      "512MB", "2GB" as people write them (memory_limit, max_result)
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from .loader import Loader
from .model import (
    BACKGROUND_BODY_LIMIT,
    BACKGROUND_SUFFIX,
    BACKGROUND_TIME_LIMIT_S,
    CONFIG_FILE,
    DEFAULT_CATCHUP_WINDOW_S,
    DEFAULT_FUNCTIONS_DIR,
    DEFAULT_RETRY_DELAYS_S,
    NAME_PATTERN,
    SCHEDULED_TIME_LIMIT_S,
    SYNC_BODY_LIMIT,
    SYNC_TIME_LIMIT_S,
    Function,
    Limits,
    Problem,
    Site,
)

__all__ = [
    "BACKGROUND_BODY_LIMIT",
    "BACKGROUND_SUFFIX",
    "BACKGROUND_TIME_LIMIT_S",
    "CONFIG_FILE",
    "DEFAULT_CATCHUP_WINDOW_S",
    "DEFAULT_FUNCTIONS_DIR",
    "DEFAULT_RETRY_DELAYS_S",
    "NAME_PATTERN",
    "SCHEDULED_TIME_LIMIT_S",
    "SYNC_BODY_LIMIT",
    "SYNC_TIME_LIMIT_S",
    "Function",
    "Limits",
    "Problem",
    "Site",
    "check_site",
    "load_site",
]


def check_site(root: Path | str) -> tuple[Site | None, list[Problem]]:
    """Load everything, collecting ALL problems (not just the first).

    The site is None only if it cannot be built at all (no root, unreadable netlify.toml).
    """
    loader = Loader(Path(root))
    site = loader.load()
    unique = list(dict.fromkeys(loader.problems))  # a value read twice is still one problem, said once
    in_order = sorted(unique, key=lambda p: (p.file != CONFIG_FILE, p.file, p.line or 0))
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
