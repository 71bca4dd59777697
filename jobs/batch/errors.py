"""The batch kit's one error, in a module of its own so that both sources and inputs can raise it."""

from __future__ import annotations

from ..errors import BackburnerError


class BatchError(BackburnerError):
    """A source, sink or chunk function the batch kit cannot work with; the message says what to change.

    ``retriable=False`` for mistakes that fail the same way every time (an unknown sink, a schema that does not
    fit): raised in a handler, such an error fails the run at once instead of spending its retries.
    """

    status = 400
    code = "batch_error"

    def __init__(self, message: str, *, retriable: bool = True) -> None:
        super().__init__(message)
        self.retriable = retriable
