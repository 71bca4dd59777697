"""``context.artifacts`` in the child process: write a run's files to the artifact store.

Every write is on the store before ``write`` returns, and the list of what was written goes back to the
worker with the handler's result. So a run is only ever ``succeeded`` with all of its artifacts stored: if
the store is down, ``write`` raises, the attempt fails and is retried like any other failure.

This module is imported for every persisted attempt, so it stays light: boto3 (via ``jobs.artifacts``) and
pandas are imported only when something is actually written.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

#: DataFrames are written by extension; anything else is refused with this list.
FRAME_FORMATS = (".csv", ".parquet", ".json", ".xlsx")


def _is_dataframe(data: Any) -> bool:
    """A pandas DataFrame, recognised without importing pandas."""
    kind = type(data)
    return kind.__name__ == "DataFrame" and kind.__module__.split(".", 1)[0] == "pandas"


def _write_frame(frame: Any, name: str, folder: str) -> Path:
    """Serialise a DataFrame to a temporary file named like the artifact, chosen by its extension."""
    suffix = Path(name).suffix.lower()
    target = Path(folder) / f"frame{suffix}"
    if suffix == ".csv":
        # A default RangeIndex is just row numbers: leave it out, but keep a meaningful index (e.g. groupby keys).
        frame.to_csv(target, index=type(frame.index).__name__ != "RangeIndex")
    elif suffix == ".parquet":
        frame.to_parquet(target)
    elif suffix == ".json":
        frame.to_json(target, orient="records", date_format="iso")
    elif suffix == ".xlsx":
        frame.to_excel(target)
    else:
        from ..errors import InvalidInput

        raise InvalidInput(
            f"Cannot write a DataFrame as {name!r}: name it with one of {', '.join(FRAME_FORMATS)} "
            "(the extension chooses the format)."
        )
    return target


class ArtifactWriter:
    """Writes artifacts of one attempt to ``runs/<function>/<run id>/<name>`` in the store at ``store_url``."""

    def __init__(self, store_url: str, function: str, run_id: str) -> None:
        self.store_url = store_url
        self.function = function
        self.run_id = run_id
        #: What this attempt wrote, in order, one entry per name (a rewrite replaces the entry).
        self.written: list[dict[str, Any]] = []

    def write(self, name: str, data: Any, content_type: str | None = None) -> dict[str, Any]:
        """Store ``data`` as artifact ``name`` and return its record ``{name, size, content_type, url}``.

        ``data`` is text (stored as UTF-8), bytes, a binary file object, a local file path (streamed, never
        read into memory; multipart on S3 above the threshold), or a pandas DataFrame (``.csv``,
        ``.parquet``, ``.json`` or ``.xlsx`` by the name's extension). Raises InvalidInput for a bad name or
        data, DeliveryError when the store cannot take it.
        """
        from ..errors import InvalidInput
        from .store import guess_content_type, run_key
        from .stores import download_path, store_for

        key = run_key(self.function, self.run_id, name)  # validates the name, with the rule in the error
        name = key.split("/", 3)[3]
        store = store_for(self.store_url)
        kind = content_type or guess_content_type(name)
        if isinstance(data, str):
            if content_type is None and kind.startswith("text/"):
                kind += "; charset=utf-8"
            info = store.put(key, data.encode("utf-8"), kind)
        elif isinstance(data, bytes | bytearray | memoryview):
            info = store.put(key, bytes(data), kind)
        elif isinstance(data, os.PathLike):
            path = Path(os.fspath(data))
            if not path.is_file():
                raise InvalidInput(f"Cannot write artifact {name!r} from {str(path)!r}: it is not a file.")
            info = store.put(key, path, kind)
        elif _is_dataframe(data):
            with tempfile.TemporaryDirectory(prefix="backburner-frame-") as folder:
                info = store.put(key, _write_frame(data, name, folder), kind)
        elif callable(getattr(data, "read", None)):
            info = store.put(key, data, kind)
        else:
            raise InvalidInput(
                f"Cannot write artifact {name!r} from {type(data).__name__}: pass str, bytes, a file path, "
                "a binary file object or a pandas DataFrame (for JSON, pass json.dumps(value))."
            )
        record = {"name": name, "size": info.size, "content_type": kind, "url": download_path(self.run_id, name)}
        self.written = [entry for entry in self.written if entry["name"] != name] + [record]
        return record
