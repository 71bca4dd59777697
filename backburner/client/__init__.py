"""The Python client for Backburner's management API: trigger runs from application code, wait for them,
download what they wrote.

    from backburner.client import Client

    with Client() as api:                       # BACKBURNER_URL and BACKBURNER_API_TOKEN by default
        run = api.trigger("daily-report-background", {"day": "2026-03-01"})
        run = api.wait(run.id, timeout=600)       # follows the run's event stream
        if run.succeeded:
            api.download(run.id, "2026-03-01/report.html", "report.html")

``AsyncClient`` has the same methods as coroutines. Errors raise ``ApiError(status, code, message)`` or
one of its subclasses (``NotFound``, ``Unauthorized``, ``Conflict``, ``BadAnswer``, ``Unreachable``). Importing this
module loads neither Dramatiq, Redis nor pandas: it is safe in any web app.

    models.py   Run, Schedule, Backfill, Replayed: typed answers (each keeps its JSON in ``data``)
    errors.py   the exception tree
    sync.py     Client (httpx.Client)
    aio.py      AsyncClient (httpx.AsyncClient)
    _calls.py   the request behind each method, shared by both
"""

from .aio import AsyncClient
from .errors import ApiError, BadAnswer, Conflict, NotFound, Unauthorized, Unreachable
from .models import Artifact, Attempt, Backfill, Progress, Replayed, Run, RunError, Schedule
from .sync import Client

__all__ = [
    "ApiError",
    "Artifact",
    "AsyncClient",
    "Attempt",
    "Backfill",
    "BadAnswer",
    "Client",
    "Conflict",
    "NotFound",
    "Progress",
    "Replayed",
    "Run",
    "RunError",
    "Schedule",
    "Unauthorized",
    "Unreachable",
]
