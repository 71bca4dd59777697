"""Batch transforms: stream a source far larger than memory through a chunk function into a sink, surviving
retries and spreading over workers.

    import pandas as pd
    from jobs.batch import Batch

    def normalise(df: pd.DataFrame) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
        ...  # return the good rows, or (good rows, rejected rows with a "reason" column)

    def handler(event, context):
        batch = Batch(context, "data/orders.csv", normalise, sink="parquet", partition_by=["country"])
        return batch.run(event)                   # or: batch.fan_out(event, children=8)

Sources: CSV, JSON Lines, Parquet (a path, glob, folder, ``s3://`` key or prefix, or a list), or ``SQL(...)``.
Sinks: Parquet (``partition_by`` makes a Hive-style dataset), CSV, JSON Lines, one part file per chunk.

Resume without duplicates or gaps: chunk k is always the same rows, its output goes to part files named by k in
a staging area, and k is recorded in the checkpoint only after its parts are durable. A retried attempt
deletes any part of chunk k or later (an attempt that died mid-chunk) and starts at chunk k. At the end the
staging area is committed at once (see ``jobs.batch.sink``) and listed as the run's artifacts ``output/...``
and ``rejects.jsonl``. The run's result is ``{rows_in, rows_out, rows_rejected, chunks, parts, ...}``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from ..runs import new_id
from . import fanout
from .fanout import SLICE_KEY, FanOutFailed, FanOutPending, payload_of, slice_of
from .sink import EXTENSIONS, Staging, part_name, register, scratch, split_partitions, write_table
from .source import SQL, BatchError, ReadOptions, Source, chunks, count_rows, file_format, resolve

__all__ = ["SQL", "Batch", "BatchError", "FanOutFailed", "FanOutPending", "ReadOptions"]

Transform = Callable[[pd.DataFrame], "pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]"]
Validate = Callable[[pd.DataFrame], "pd.Series[Any]"]
COUNTS = ("rows_in", "rows_out", "rows_rejected", "chunks")


class Batch:
    """One batch job of a run.

    Args:
        context: the handler's context (checkpoints, progress, artifacts).
        source: what to read (see the module docstring); relative paths are relative to the function's folder.
        transform: called with each chunk as a DataFrame; returns the rows to write, or ``(good, rejects)``
            where ``rejects`` has a ``reason`` column. None writes the chunk unchanged.
        validate: called with each chunk before ``transform``; returns one reason per row (None or "" for a
            good row). Rows with a reason go to ``rejects.jsonl``.
        sink: ``"parquet"``, ``"csv"`` or ``"jsonl"``.
        partition_by: Parquet only: columns whose values name folders (``output/country=DE/part-...``).
        chunk_rows: rows per chunk; memory use is a few times one chunk's size.
        schema: the output schema (a ``pyarrow.Schema`` or ``{column: type}``) naming every output column, so
            every part has the same types.
        read: parsing options (``ReadOptions(column_types=..., columns=..., delimiter=...)``).
    """

    def __init__(
        self,
        context: Any,
        source: Source,
        transform: Transform | None = None,
        *,
        validate: Validate | None = None,
        sink: str = "parquet",
        partition_by: Sequence[str] = (),
        chunk_rows: int = 100_000,
        schema: pa.Schema | Mapping[str, Any] | None = None,
        read: ReadOptions | None = None,
    ) -> None:
        if sink not in EXTENSIONS:
            raise BatchError(f"Unknown sink {sink!r}: use 'parquet', 'csv' or 'jsonl'.", retriable=False)
        if partition_by and sink != "parquet":
            raise BatchError(
                "partition_by makes a Parquet dataset; use sink='parquet' (or drop partition_by).", retriable=False
            )
        if chunk_rows < 1:
            raise BatchError(f"chunk_rows must be at least 1, got {chunk_rows}.", retriable=False)
        self.context = context
        self.source = source
        self.transform = transform
        self.validate = validate
        self.sink = sink
        self.partition_by = list(partition_by)
        self.chunk_rows = chunk_rows
        self.schema = schema if schema is None or isinstance(schema, pa.Schema) else pa.schema(dict(schema))
        self.read = read or ReadOptions()

    # -- entry points ------------------------------------------------------------------------------------

    def run(self, event: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Process the whole source in this run and commit; in a fan-out child, process its slice only."""
        piece = slice_of(event)
        if piece is not None:
            return self._run_slice(piece)
        staging = self._own_staging()
        state = self._state("run")
        if state["phase"] == "chunks":
            source = self._resolve()
            total = _known_rows(source, self.read)
            state = self._process(state, staging, 0, source, 0, None, total)
        return self._commit(state, staging)

    def fan_out(
        self, event: Mapping[str, Any] | None, children: int, *, function: str | None = None, poll_s: float = 1.0
    ) -> dict[str, Any]:
        """Split the source into ``children`` child runs of ``function`` (default: this function), wait, merge.

        The same handler serves the parent and its children: in a child (its event carries a slice) this
        processes the slice and returns its counts. See ``jobs.batch.fanout`` for the design.
        """
        piece = slice_of(event)
        if piece is not None:
            return self._run_slice(piece)
        from ..execution import spawn

        context = self.context
        state = self._state("parent")
        if state["phase"] == "plan":
            source = self._resolve()
            if isinstance(source, SQL):
                raise BatchError(
                    "A SQL source cannot be split into child runs; split the query yourself.", retriable=False
                )
            slices = fanout.plan(source, children, lambda location: count_rows(location, self.read))
            rows = [s["rows"] for s in slices]
            total = None if None in rows else sum(rows)
            state.update(phase="wait", slices=slices, children=[new_id() for _ in slices], total=total)
            context.checkpoint.save(state)  # the ids first: a crash before spawning cannot start a slice twice
        elif state["phase"] == "wait" and fanout.refresh_failed(state, spawn.runs(context, state["children"])):
            context.checkpoint.save(state)  # a retry: failed slices get new child runs
        if state["phase"] == "wait":
            target = function or context.function_name
            parent, base = self._parent(), payload_of(event)  # children see the parent's payload too
            payloads = [
                base | {SLICE_KEY: {**part, "slice": n, "parent": parent}} for n, part in enumerate(state["slices"])
            ]
            context.spawn(target, payloads, ids=state["children"])
            context.log.info("fan-out: %d child runs of %s", len(payloads), target)
            results = fanout.wait(context, state["children"], state["total"], poll_s=poll_s, read=spawn.runs)
            for key in COUNTS:
                state[key] = sum(int((r or {}).get(key, 0)) for r in results)
            state["phase"] = "commit"
            context.checkpoint.save(state)
        return self._commit(state, staging=self._own_staging(), children=state["children"])

    # -- the chunk loop ----------------------------------------------------------------------------------

    def _process(
        self,
        state: dict[str, Any],
        staging: Staging,
        slice_index: int,
        source: list[str] | SQL,
        start: int,
        stop: int | None,
        total: int | None,
    ) -> dict[str, Any]:
        """Run every chunk from the checkpoint on; returns the state with the counts and phase ``commit``."""
        context = self.context
        resumed = state["resumed_at_chunk"] = state["next"]
        if resumed:
            context.log.info("resuming at chunk %d (%d rows done)", resumed, state["rows_in"])
        staging.discard(slice_index, resumed)
        reader = chunks(source, self.chunk_rows, self.read, start=start + resumed * self.chunk_rows, stop=stop)
        for offset, table in enumerate(reader):
            chunk = resumed + offset
            written, rejected = self._chunk(table, staging, slice_index, chunk)
            state["rows_in"] += table.num_rows
            state["rows_out"] += written
            state["rows_rejected"] += rejected
            state["next"] = state["chunks"] = chunk + 1
            context.checkpoint.save(state)  # only now: the chunk's parts are durable
            context.progress(state["rows_in"], total, f"chunk {chunk + 1}: {state['rows_rejected']:,} rows rejected")
        state["phase"] = "commit"
        context.checkpoint.save(state)
        return state

    def _chunk(self, table: pa.Table, staging: Staging, slice_index: int, chunk: int) -> tuple[int, int]:
        frame = table.to_pandas()
        rejects: list[pd.DataFrame] = []
        if self.validate is not None:
            reasons = pd.Series(self.validate(frame), index=frame.index)
            bad = reasons.notna() & (reasons.astype(str) != "")
            if bad.any():
                rejects.append(frame[bad].assign(reason=reasons[bad].astype(str)))
                frame = frame[~bad]
        if self.transform is not None:
            out = self.transform(frame)
            if isinstance(out, tuple):
                frame, bad_rows = out
                if len(bad_rows):
                    if "reason" not in bad_rows.columns:
                        raise BatchError(
                            "The rejects your chunk function returned need a 'reason' column.", retriable=False
                        )
                    rejects.append(bad_rows)
            else:
                frame = out
            if not isinstance(frame, pd.DataFrame):
                raise BatchError(
                    f"The chunk function returned {type(frame).__name__}; return a DataFrame.", retriable=False
                )
        if self.schema is not None:
            _check_columns(frame, self.schema)
        output = pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False)
        if missing := [column for column in self.partition_by if column not in output.column_names]:
            raise BatchError(
                f"partition_by names {', '.join(map(repr, missing))}, which the output does not have; its columns"
                f" are {', '.join(map(repr, output.column_names[:20]))}.",
                retriable=False,
            )
        rejected = sum(len(r) for r in rejects)
        with scratch() as folder:
            for n, (sub, part) in enumerate(split_partitions(output, self.partition_by)):
                path = folder / f"{n}.{self.sink}"
                write_table(part, self.sink, path)
                staging.put(f"output/{sub}{part_name(slice_index, chunk, self.sink)}", path)
            if rejected:
                path = folder / "rejects.jsonl"
                pd.concat(rejects).to_json(path, orient="records", lines=True, date_format="iso")
                staging.put(f"rejects/{part_name(slice_index, chunk, 'jsonl')}", path)
        return output.num_rows, rejected

    # -- commit ------------------------------------------------------------------------------------------

    def _commit(self, state: dict[str, Any], staging: Staging, **extra: Any) -> dict[str, Any]:
        """Publish staged rejects, then outputs (manifest last), and list them on the run; repeatable."""
        writer = self._writer()
        counts = {key: state[key] for key in COUNTS}
        if not staging.committed():  # rejects first: publishing deletes the staging area
            with scratch() as folder:
                path = folder / "rejects.jsonl"
                staging.concatenate("rejects", path)
                writer.write("rejects.jsonl", path)
        staging.publish({**counts, "run_id": self.context.run_id})
        outputs = staging.published("output")
        register(writer, outputs + [staging.store.stat(staging.prefix + "rejects.jsonl")], staging.prefix)
        parts = sum(1 for info in outputs if not info.name.endswith("/_SUCCESS"))
        resumed = state.get("resumed_at_chunk", 0)
        files = {"parts": parts, "output": "output/", "rejects": "rejects.jsonl", "resumed_at_chunk": resumed}
        return {**counts, **files, **extra}

    # -- helpers -----------------------------------------------------------------------------------------

    def _run_slice(self, piece: Mapping[str, Any]) -> dict[str, Any]:
        """A fan-out child: its slice into the parent's staging area; the parent commits."""
        from ..artifacts.stores import store_for

        parent = piece["parent"]
        staging = Staging(store_for(parent["store"]), f"runs/{parent['function']}/{parent['run_id']}/")
        state = self._state("slice")
        if state["phase"] == "chunks":
            source = [self._local(f) for f in piece["files"]]
            state = self._process(state, staging, piece["slice"], source, piece["start"], piece["stop"], piece["rows"])
        return {key: state[key] for key in COUNTS} | {"slice": piece["slice"], "parent": parent["run_id"]}

    def _state(self, kind: str) -> dict[str, Any]:
        state = self.context.checkpoint.load(None)
        if isinstance(state, dict) and state.get("kind") == kind:
            return state
        first = "plan" if kind == "parent" else "chunks"
        return {"kind": kind, "phase": first, "next": 0, **dict.fromkeys(COUNTS, 0)}

    def _writer(self) -> Any:
        writer = self.context.artifacts
        if not writer:  # a synchronous invocation: no run keeps files
            raise BatchError(
                "Batch output needs an artifact store: run the function in a worker (background).", retriable=False
            )
        return writer

    def _own_staging(self) -> Staging:
        from ..artifacts.stores import store_for

        writer = self._writer()
        return Staging(store_for(writer.store_url), f"runs/{writer.function}/{writer.run_id}/")

    def _parent(self) -> dict[str, str]:
        writer = self._writer()
        return {"function": writer.function, "run_id": writer.run_id, "store": writer.store_url}

    def _resolve(self) -> list[str] | SQL:
        source = self.source
        if isinstance(source, SQL):
            return source
        items = [source] if isinstance(source, str | os.PathLike) else list(source)
        return resolve([self._local(os.fspath(item)) for item in items])

    def _local(self, location: str) -> str:
        """Relative paths are relative to the function's folder (sample data shipped beside the code)."""
        if location.startswith("s3://") or os.path.isabs(location):
            return location
        from ..execution.spawn import site_root

        module_dir = _function_dir(self.context.function_name)
        return str((module_dir or site_root(self.context.function_name)) / location)


def _function_dir(name: str) -> Path | None:
    import sys

    module = sys.modules.get("netlify_function_" + name.replace("-", "_"))
    path = getattr(module, "__file__", None)
    return Path(path).resolve().parent if path else None


def _known_rows(source: list[str] | SQL, read: ReadOptions) -> int | None:
    """The total for progress bars when it is free (local Parquet metadata), else None."""
    if isinstance(source, SQL) or any(file_format(f) != "parquet" or f.startswith("s3://") for f in source):
        return None
    return sum(count_rows(f, read) for f in source)


def _check_columns(frame: pd.DataFrame, schema: pa.Schema) -> None:
    """The schema must name exactly the chunk's columns: Arrow would drop the others without a word."""
    have, named = [str(c) for c in frame.columns], set(schema.names)
    extra = [c for c in have if c not in named]
    missing = [c for c in schema.names if c not in set(have)]
    if extra or missing:
        parts = []
        if extra:
            parts.append(f"the chunk has columns the schema does not name ({', '.join(extra)})")
        if missing:
            parts.append(f"the schema names columns the chunk lacks ({', '.join(missing)})")
        raise BatchError(
            f"Batch schema: {'; '.join(parts)}. Give every output column a type, or drop or add columns in the "
            "chunk function.",
            retriable=False,
        )
