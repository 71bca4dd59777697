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
import re
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from types import TracebackType

from jobs.execution.secrets import REDACTED, redact, secrets_from_environment

__all__ = ["REDACTED", "JsonFormatter", "RedactingFormatter", "configure", "redact", "secrets_from_environment"]

#: LogRecord attributes that are not ``extra`` fields; uvicorn's ``color_message`` repeats the message with
#: terminal colours, which have no place in a JSON line.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName", "color_message"}
#: Terminal control sequences (colours, cursor moves) that libraries put in their messages.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]")


def _plain(value: object) -> object:
    return _ANSI.sub("", value) if isinstance(value, str) and "\x1b" in value else value


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
            "message": _plain(record.getMessage()),
            "service": self.service,
            "pid": record.process,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in entry:
                entry[key] = _plain(value)
        # Text is redacted before it is escaped (a secret in any form the text holds it in), and the line
        # after (a secret inside a value that only became text here).
        for key, value in entry.items():
            if isinstance(value, str):
                entry[key] = redact(value, self.secrets)
        return redact(json.dumps(entry, default=str), self.secrets)


class KnownNoise(logging.Filter):
    """Two libraries' lines about a Redis that is away or hung, which Backburner's own lines already say once
    per outage (``jobs.broker.Outage``): APScheduler's "skipped: maximum number of running instances" for every
    wake-up while a call waits on Redis (several a second), and Dramatiq's CRITICAL for a consumer that lost its
    connection and starts again by itself, which would page whoever alerts on CRITICAL. The first is dropped, the
    second said as a warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if record.name == "apscheduler.scheduler" and "maximum number of running instances" in message:
            return False
        reconnects = message.startswith("Consumer encountered a connection error")
        if reconnects and record.name.startswith("dramatiq.worker.ConsumerThread"):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _log_uncaught(kind: type[BaseException], error: BaseException, traceback: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, traceback)
        return
    logging.getLogger("backburner").critical("uncaught exception", exc_info=(kind, error, traceback))


def _log_thread_uncaught(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    error = args.exc_value if args.exc_value is not None else args.exc_type()
    logging.getLogger("backburner").error(
        "uncaught exception in thread %s", name, exc_info=(args.exc_type, error, args.exc_traceback)
    )


def configure(level: str = "INFO", *, service: str | None = None, fmt: str | None = None) -> None:
    """Send every logger to stderr in the chosen format (``BACKBURNER_LOG_FORMAT``: ``text`` or ``json``)."""
    chosen = (fmt or os.environ.get("BACKBURNER_LOG_FORMAT") or "text").strip().lower()
    secrets = secrets_from_environment()
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(KnownNoise())
    if chosen == "json":
        handler.setFormatter(JsonFormatter(service, secrets))
    else:
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request's full URL at INFO; a webhook or API URL's query may hold a credential.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
    # Everything else a process would write to stderr goes through the same handler, so each line has the
    # chosen format: Python's warnings, and exceptions nobody caught (in the main thread or another one).
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_thread_uncaught
    # Neither format shows where a call was made from, so skip looking it up for every record (a
    # worker logs one line per attempt): the logging docs' own "Optimization" advice.
    logging._srcfile = None
