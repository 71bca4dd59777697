"""Backburner's own secrets: the variables a handler never sees, and taking secrets out of text bound for a log.

Handlers get the worker's environment (AWS credentials included: they read S3) minus Backburner's own
secrets: ``BACKBURNER_API_TOKEN``, ``BACKBURNER_WEBHOOK_SECRET`` and any other ``BACKBURNER_*`` variable
whose name says it is a token, secret, password, key or session key.

Redaction replaces each known secret in every form it takes on its way into a log: as is, JSON-escaped
(a token with ``"`` or ``\\`` in it, once or twice over), as a Python ``repr``, URL-encoded. Text that
merely looks secret (``Bearer ...``, ``whsec_...``, a password in a URL, a presigned-URL signature) is
redacted too. Operator logs (``backburner.logs``) and run logs captured in the child use the same code.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus, urlsplit

REDACTED = "[redacted]"
#: Backburner's own secrets: never in a handler's environment.
HIDDEN_VARIABLES = ("BACKBURNER_API_TOKEN", "BACKBURNER_WEBHOOK_SECRET")
_HIDDEN_NAME = re.compile(r"^BACKBURNER_\w*(?:TOKEN|SECRET|PASSWORD|PASSWD|SESSION|_KEY)\w*$", re.IGNORECASE)
#: Secrets a handler may need (it gets them) but no log should show.
SECRET_VARIABLES = (*HIDDEN_VARIABLES, "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
#: Values shorter than this are not worth hiding (and would redact half of every line).
MIN_SECRET_CHARS = 4
#: Any other variable whose name says it holds a secret (the user's own, e.g. ``UPSTREAM_TOKEN`` or a function's
#: ``DB_PASSWORD``, ``DB_PASS``, ``MYSQL_PWD``, ``SENTRY_DSN``): its value is redacted too, if it is this long
#: (shorter ones are flags and modes, not secrets).
_SECRET_NAME = re.compile(
    r"TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|PRIVATE|(?:^|_)(?:API_?)?KEY(?:$|_)|(?:^|_)AUTH(?:$|_)"
    r"|_(?:PASS|PWD)(?:$|_)|(?:^|_)DSN(?:$|_)",  # not PWD itself: the working directory
    re.IGNORECASE,
)
MIN_NAMED_SECRET_CHARS = 8

_PATTERNS = (
    # A token starts as RFC 6750's b64token does: "Bearer = ..." in a hint is no token, and stays readable.
    (re.compile(r"(?i)(bearer\s+)(?=[A-Za-z0-9._~+/-])[^\s'\"\\]+"), r"\1" + REDACTED),
    (re.compile(r"whsec_[A-Za-z0-9+/=_-]+"), "whsec_" + REDACTED),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@"), r"\1" + REDACTED + "@"),
    (re.compile(r"(?i)((?:x-amz-signature|x-amz-security-token|signature)=)[^&\s'\"\\]+"), r"\1" + REDACTED),
)
#: Per pattern, substrings (lower case) that any match must contain; lines without them skip the regex.
_MARKERS = (("bearer",), ("whsec_",), ("://",), ("signature=", "x-amz-security-token="))


def hidden(name: str) -> bool:
    """Whether a variable is one of Backburner's own secrets, which handlers never see."""
    return name in HIDDEN_VARIABLES or bool(_HIDDEN_NAME.match(name))


def without_hidden(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` minus Backburner's own secrets."""
    return {name: value for name, value in environ.items() if not hidden(name)}


def scrub_environ() -> dict[str, str]:
    """Remove Backburner's own secrets from ``os.environ`` (and the C environment); return what was removed."""
    return {name: os.environ.pop(name) for name in [name for name in os.environ if hidden(name)]}


def secrets_from_environment(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values worth hiding: the secret settings, Backburner's own secrets, the password in REDIS_URL, and the
    value of any variable whose name says it is a token, secret, password, key or credential."""
    env = os.environ if environ is None else environ
    # A prefix test first: the pattern is only worth matching against BACKBURNER_ names.
    found = [
        value
        for name, value in env.items()
        if name in SECRET_VARIABLES or (name[:11].upper() == "BACKBURNER_" and hidden(name))
    ]
    found += [
        value for name, value in env.items() if len(value) >= MIN_NAMED_SECRET_CHARS and _SECRET_NAME.search(name)
    ]
    for name in ("REDIS_URL", "BACKBURNER_REDIS_URL"):
        found += url_password(env.get(name, ""))
    return sorted({value for value in found if len(value) >= MIN_SECRET_CHARS}, key=len, reverse=True)


def url_password(url: str | None) -> list[str]:
    """The password in a URL like ``redis://:pw@host``, as a list (empty when there is none)."""
    try:
        password = urlsplit(url or "").password
    except ValueError:
        return []
    return [password] if password and len(password) >= MIN_SECRET_CHARS else []


def encodings(secret: str) -> set[str]:
    """The forms a secret takes on its way into a log line."""
    escaped = json.dumps(secret)[1:-1]
    return {
        secret,
        escaped,
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(escaped)[1:-1],  # JSON inside JSON: a JSON log line quoting a JSON document
        repr(secret)[1:-1],
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
    }


def _forms(secrets: tuple[str, ...]) -> tuple[str, ...]:
    forms = {form for secret in secrets if len(secret) >= MIN_SECRET_CHARS for form in encodings(secret)}
    return tuple(sorted(forms, key=len, reverse=True))  # longest first: a form may contain a shorter one


class Redactor:
    """Redacts a fixed set of secrets (and whatever looks like one) from text: ``redactor(text)``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.forms = _forms(tuple(secrets))

    def finds(self, text: str) -> bool:
        """Whether ``text`` may hold something to redact (a cheap look, for whole batches of lines)."""
        if any(form in text for form in self.forms):
            return True
        lowered = text.lower()
        return any(m in lowered for marker in _MARKERS for m in marker)

    def __call__(self, text: str) -> str:
        for form in self.forms:
            if form in text:
                text = text.replace(form, REDACTED)
        lowered = text.lower()
        for (pattern, replacement), marker in zip(_PATTERNS, _MARKERS, strict=True):
            if any(m in lowered for m in marker):  # a substring test is far cheaper than a regex scan
                text = pattern.sub(replacement, text)
        return text


@functools.lru_cache(maxsize=32)
def _redactor(secrets: tuple[str, ...]) -> Redactor:
    return Redactor(secrets)


def redactor(secrets: Iterable[str] = ()) -> Redactor:
    """The Redactor for ``secrets``, made once per set (an attempt's child builds one per attempt)."""
    return _redactor(tuple(secrets))


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without any of ``secrets`` (in any of their encodings) or anything that looks like a secret."""
    return redactor(secrets)(text)
