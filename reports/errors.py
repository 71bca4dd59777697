"""The one error the reports library raises on purpose.

    ReportError    a source, template, chart or export could not be used

``reports`` is a pure library and imports nothing from the runtime, so it defines its own error; the
runtime maps it onto its own tree when a built-in job kind needs to.
"""

from __future__ import annotations


class ReportError(Exception):
    """Raised when a data source, a template, a chart or an export cannot be produced.

    ``source`` names what failed (a path, an ``s3://`` URL, a database URL with the password hidden,
    a template or a section title) and leads the message, so the log line alone points at the fix.
    """

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.message = message
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)
