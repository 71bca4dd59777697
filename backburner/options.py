"""Options, consoles and the API client shared by the CLI's modules."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from .client import ApiError, Client, Unauthorized, Unreachable

#: Neither turns ``:smile:`` into an emoji: the consoles print user text (logs, results, bodies) verbatim.
console = Console(stderr=True, soft_wrap=True, emoji=False)
out = Console(soft_wrap=True, emoji=False)

site_option = click.option(
    "--site",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Site root with netlify.toml (default: BACKBURNER_SITE or .).",
)
url_option = click.option("--url", default=None, help="API URL (default: BACKBURNER_URL or http://127.0.0.1:8888).")
#: ``--site`` on a client command: every command takes it (DESIGN.md section 7), but a client command asks the
#: API, which serves its own site, so the value is accepted and not used.
_client_site_option = click.option(
    "--site",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    expose_value=False,
    help="Accepted as by every command; the API serves its own site.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")

F = TypeVar("F", bound=Callable[..., Any])


def settings_for(site: Path | None, **overrides: Any) -> Any:
    """The process settings, with ``--site`` (and other flags) over the environment."""
    from jobs.settings import load_settings

    return load_settings(site=site, **overrides)


def check_or_exit(site: Path) -> Any:
    """The loaded site; else a ConfigError with every problem, one a line, which the CLI prints one a line
    (JSON records for a service in JSON log mode: ``backburner.startup``) with exit code 1."""
    from jobs.errors import ConfigError
    from jobs.site import check_site

    loaded, problems = check_site(site)
    if problems or loaded is None:
        raise ConfigError("\n".join(str(problem) for problem in problems) or f"{site}: the site does not load")
    return loaded


def client_options(command: F) -> F:
    """``--url`` (where the API is) and ``--site``, for the commands that talk to the API."""
    return _client_site_option(url_option(command))


def connect(url: str | None) -> Client:
    """The API client for a command's ``--url`` (else BACKBURNER_URL), with BACKBURNER_API_TOKEN."""
    try:
        return Client(url)
    except ValueError as exc:  # a URL or token that cannot work: say which, in one line
        raise click.ClickException(str(exc)) from None


def api_errors(command: F) -> F:
    """Turn the client's errors into one clear line and exit code 1 (with a hint for a missing token)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except Unreachable as exc:
            if exc.sent:  # it got there: the advice is in the message, not "is it running?"
                raise click.ClickException(exc.message) from None
            raise click.ClickException(
                f"{exc.message} Is `backburner dev` running? Use --url or BACKBURNER_URL to point elsewhere."
            ) from None
        except ApiError as exc:
            message = f"{exc.status}: {exc.message}"
            if isinstance(exc, Unauthorized):
                hint = (
                    "BACKBURNER_API_TOKEN does not match the server's token"
                    if os.environ.get("BACKBURNER_API_TOKEN")
                    else "export BACKBURNER_API_TOKEN=<the server's token>"
                )
                message += f" ({hint})"
            raise click.ClickException(message) from None

    return wrapper  # type: ignore[return-value]
