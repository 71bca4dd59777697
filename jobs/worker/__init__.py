"""A worker process and the threads it runs beside its Dramatiq consumers.

process.py    WorkerProcess: Dramatiq worker threads feeding attempts to warm child processes
recorder.py   writes finished attempts' outcomes, many per round trip, off the worker threads
reaper.py     heartbeats, and the sweep that resumes runs whose worker died (and drives retention)
retention.py  removes runs (records and artifacts) older than their function's ``retention``
"""

from __future__ import annotations

from .process import WorkerProcess, run_worker

__all__ = ["WorkerProcess", "run_worker"]
