"""Process logging for every `backburner` command: text for people, JSON lines for log pipelines.

``BACKBURNER_LOG_FORMAT=json`` makes every process (API, worker, scheduler, and the ones `dev` starts, which
inherit the environment) write one JSON object per line to stderr: ``time``, ``level``, ``logger``,
``message``, ``service``, ``pid``, ``exception`` when there is one, and any ``extra={...}`` fields.

Secrets never reach the output in either format: the values of the secret settings found in the
environment (API token, webhook secret, AWS secret key and session token, the Redis password) are
replaced by ``[redacted]`` in every encoding a log line may carry them in (as is, JSON-escaped, quoted),
and so are things that look like secrets anyway (``Bearer ...``, ``whsec_...``, passwords in URLs,
presigned-URL signatures): ``jobs.execution.secrets``, shared with the run logs captured from handlers.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from jobs.execution.secrets import REDACTED, redact, secrets_from_environment

__all__ = ["REDACTED", "JsonFormatter", "RedactingFormatter", "configure", "redact", "secrets_from_environment"]

#: LogRecord attributes that are not ``extra`` fields.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class RedactingFormatter(logging.Formatter):
    """The usual text format, with secrets removed."""

    def __init__(self, fmt: str, secrets: Iterable[str] = ()) -> None:
        super().__init__(fmt)
        self.secrets = list(secrets)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


class JsonFormatter(logging.Formatter):
    """One JSON object per record; values that are not JSON become strings. Secrets are redacted."""

    def __init__(self, service: str | None = None, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.service = service
        self.secrets = list(secrets)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": self.service,
            "pid": record.process,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in entry:
                entry[key] = value
        # Text is redacted before it is escaped (a secret in any form the text holds it in), and the line
        # after (a secret inside a value that only became text here).
        for key, value in entry.items():
            if isinstance(value, str):
                entry[key] = redact(value, self.secrets)
        return redact(json.dumps(entry, default=str), self.secrets)


def configure(level: str = "INFO", *, service: str | None = None, fmt: str | None = None) -> None:
    """Send every logger to stderr in the chosen format (``BACKBURNER_LOG_FORMAT``: ``text`` or ``json``)."""
    chosen = (fmt or os.environ.get("BACKBURNER_LOG_FORMAT") or "text").strip().lower()
    secrets = secrets_from_environment()
    handler = logging.StreamHandler(sys.stderr)
    if chosen == "json":
        handler.setFormatter(JsonFormatter(service, secrets))
    else:
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Neither format shows where a call was made from, so skip looking it up for every record (a
    # worker logs one line per attempt): the logging docs' own "Optimization" advice.
    logging._srcfile = None
