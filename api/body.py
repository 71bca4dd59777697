"""Reading request bodies under the function kind's limit (without buffering more than the limit), and
reading JSON payloads strictly: UTF-8, valid JSON, nested at most ``MAX_JSON_DEPTH`` levels."""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime
from typing import Any

from fastapi import Request

from jobs.errors import InvalidInput, PayloadTooLarge
from jobs.site import Function

#: Deeper payloads are refused: nothing real nests this deep, and deep nesting is a way to exhaust the stack
#: of whatever reads the payload next (a handler, a template).
MAX_JSON_DEPTH = 64
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = re.compile(r"[^\[\]{}]")


def _too_large(function: Function, size: int | str, limit: int) -> PayloadTooLarge:
    kind = "background" if function.background else "synchronous"
    return PayloadTooLarge(
        f"Request body is {size} bytes; {kind} function {function.name!r} accepts at most "
        f"{limit} bytes ({limit // 1024} KB)."
    )


async def read_body(request: Request, function: Function, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(function, declared, limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(function, f"more than {limit}", limit)
    return bytes(body)


def parse_json(body: bytes, what: str = "The payload") -> Any:
    """``body`` as JSON, or InvalidInput (400) saying what is wrong with it."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{what} is not UTF-8 text: byte {exc.start} is {body[exc.start]:#04x}.") from None
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH:  # only then can it be too deep
        _check_depth(text, what)
    if text.startswith("\ufeff"):  # json.loads would advise Python's "utf-8-sig", meaningless to a caller
        raise InvalidInput(f"{what} starts with a byte-order mark (EF BB BF): send JSON without one.")
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.") from None
    except ValueError as exc:  # Python's own limit, whose message advises a Python setting
        if "digits" in str(exc):
            limit = sys.get_int_max_str_digits()
            raise InvalidInput(f"{what} holds a number with more than {limit} digits; send it as a string.") from None
        raise InvalidInput(f"{what} is not usable JSON: {exc}.") from None
    except RecursionError:
        raise InvalidInput(f"{what} is nested too deeply.") from None


def parse_time(value: str, name: str) -> datetime:
    """An ISO 8601 time from a request (UTC without a zone); 400 for anything else, numbers included."""
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise InvalidInput(
            f"{name} must be an ISO 8601 time like 2026-03-01T14:00:00Z, not {str(value)[:40]!r}."
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _check_depth(text: str, what: str) -> None:
    """Refuse nesting deeper than MAX_JSON_DEPTH before parsing (brackets inside strings do not count)."""
    depth = 0
    for char in _NOT_BRACKETS.sub("", _STRINGS.sub("", text)):
        depth += 1 if char in "[{" else -1
        if depth > MAX_JSON_DEPTH:
            raise InvalidInput(f"{what} nests deeper than {MAX_JSON_DEPTH} levels of arrays and objects.")
