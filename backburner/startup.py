"""Start-up failures as one line each (what is wrong, where, the fix), never a traceback.

Every command runs inside ``Commands.invoke``: a ``ConfigError`` (bad settings, a site that does not load, a
missing secret) or a failed embedded Redis ends the command with its message on stderr and exit code 1. The
services (``dev``, ``api``, ``worker``, ``scheduler``) report their other start-up errors (a port that cannot
be bound, say) the same way, and write them as a JSON log line when ``BACKBURNER_LOG_FORMAT=json``, so a log
pipeline sees them like any other record.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from typing import Any

import click
from rich.markup import escape

from jobs.errors import ConfigError

from .options import console
from .redis_server import RedisServerError

SERVICES = frozenset({"dev", "api", "worker", "scheduler"})


def json_logs() -> bool:
    return (os.environ.get("BACKBURNER_LOG_FORMAT") or "").strip().lower() == "json"


def report(message: str, *, command: str | None = None, level: str = "error") -> None:
    """Each line of ``message`` as one line on stderr: ``error: ...`` for people, a JSON record for a service
    in JSON mode."""
    for line in message.splitlines() or [message]:
        if command in SERVICES and json_logs():
            from .logs import redact, secrets_from_environment

            record = {
                "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "level": level.upper(),
                "logger": "backburner",
                "message": line,
                "service": command,
                "pid": os.getpid(),
            }
            sys.stderr.write(redact(json.dumps(record), secrets_from_environment()) + "\n")
            sys.stderr.flush()
        else:
            colour = "red" if level == "error" else "yellow"
            console.print(f"[{colour}]{level}:[/] {escape(line)}", highlight=False)


class Commands(click.Group):
    """The ``backburner`` group: configuration errors from any command become one line and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ConfigError, RedisServerError) as exc:
            report(str(exc), command=ctx.invoked_subcommand)
            sys.exit(1)
        except click.UsageError:
            raise  # click shows the usage with it
        except click.ClickException as exc:
            if ctx.invoked_subcommand not in SERVICES:
                raise
            report(exc.format_message(), command=ctx.invoked_subcommand)  # the same line, or JSON, as above
            sys.exit(exc.exit_code)
