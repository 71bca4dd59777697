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
    ``retriable`` is False for mistakes that fail the same way every time (a template that does not render,
    a chart of a column the frame lacks); raised in a Backburner handler, such an error fails the run at once
    instead of spending its retries. What may pass (a file not there yet, a database that did not answer)
    stays retriable.
    """

    def __init__(self, message: str, *, source: str | None = None, retriable: bool = True) -> None:
        self.message = message
        self.source = source
        self.retriable = retriable
        super().__init__(f"{source}: {message}" if source else message)
