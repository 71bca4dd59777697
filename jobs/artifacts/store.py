"""The artifact store: files a run produces, kept under ``runs/<function>/<run id>/<name>``.

Two backends with one interface: a local folder (the default, for ``dev`` and single hosts) and S3 through
boto3 (AWS, MinIO, R2, any endpoint). Keys are validated relative POSIX paths on both, so a name that works
locally works on S3 and the other way round, and nothing can write outside the store.
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
import os
import re
import tempfile
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import quote

from ..errors import BackburnerError, InvalidInput

CHUNK_SIZE = 1024 * 1024
MAX_NAME_BYTES = 1024
_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_DRIVE = re.compile(r"^[A-Za-z]:")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_TYPES = {
    ".parquet": "application/vnd.apache.parquet",
    ".jsonl": "application/jsonl",
    ".ndjson": "application/x-ndjson",
    ".csv": "text/csv",
    ".md": "text/markdown",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_MIME = mimetypes.MimeTypes()  # built-in table only: the same answers on every host, whatever /etc says


class Readable(Protocol):
    """Any binary stream: an open file, a pipe, a socket file, a BytesIO."""

    def read(self, size: int = ..., /) -> bytes: ...


Data = bytes | Readable | Path


class ArtifactNotFound(BackburnerError):
    """Raised when a store has no object under the requested key."""

    status = 404
    code = "artifact_not_found"


def validate_name(name: str) -> str:
    """Return ``name`` (NFC-normalised) if it is a safe relative POSIX path, else raise InvalidInput.

    The same rules hold on every backend, so an artifact can never escape the run's folder or mean
    different things on S3 and on disk.
    """

    def refuse(rule: str) -> InvalidInput:
        shown = repr(name) if len(name) <= 80 else repr(name[:80]) + "..."
        return InvalidInput(f"Artifact name {shown} is not allowed: {rule}.")

    if not name:
        raise refuse("it is empty")
    name = unicodedata.normalize("NFC", name)
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise refuse(f"it is longer than {MAX_NAME_BYTES} bytes")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise refuse("it contains a control character (such as NUL or a newline)")
    if hidden := [ch for ch in name if unicodedata.category(ch) in ("Cc", "Cf")]:
        # C1 controls, and format characters: a right-to-left override shows "txt.exe" as "exe.txt" in a
        # download's file name, a zero-width space makes two names look alike.
        raise refuse(f"it contains an invisible or control character (U+{ord(hidden[0]):04X})")
    if "\\" in name:
        raise refuse("it contains a backslash; use '/' to separate folders")
    if name.startswith("/"):
        raise refuse("it is an absolute path; use a relative path like 'reports/summary.csv'")
    if _DRIVE.match(name):
        raise refuse("it starts with a drive letter, as a Windows path does; use a name like 'reports/summary.csv'")
    if name.endswith("/"):
        raise refuse("it ends with '/'; name a file, not a folder")
    for segment in name.split("/"):
        if segment == "..":
            raise refuse("it contains a '..' segment")
        if segment == ".":
            raise refuse("it contains a '.' segment")
        if segment == "":
            raise refuse("it contains an empty segment ('//')")
    return name


def _validate_prefix(prefix: str, *, allow_empty: bool) -> str:
    """A key prefix: a valid name, optionally ending in '/', or '' when listing everything."""
    if prefix == "":
        if allow_empty:
            return ""
        raise InvalidInput("An empty prefix would delete the whole store; name a prefix such as 'runs/<fn>/'.")
    stem = prefix[:-1] if prefix.endswith("/") else prefix
    return validate_name(stem) + ("/" if prefix.endswith("/") else "")


def run_key(function: str, run_id: str, name: str) -> str:
    """The store key of a run's artifact: ``runs/<function>/<run id>/<validated name>``."""
    if not _FUNCTION_NAME.match(function or ""):
        raise InvalidInput(f"Function name {function!r} is not allowed: use letters, digits, '_' and '-'.")
    try:
        one_segment = "/" not in run_id and validate_name(run_id) == run_id
    except InvalidInput:
        one_segment = False
    if not one_segment:
        raise InvalidInput(f"Run id {run_id!r} is not allowed: it must be one path segment.")
    return f"runs/{function}/{run_id}/{validate_name(name)}"


def attachment(name: str) -> str:
    """``Content-Disposition: attachment`` with an ASCII fallback and the exact UTF-8 file name (RFC 6266), so
    a browser saves an artifact (an HTML report, say) instead of rendering it."""
    filename = name.rsplit("/", 1)[-1]
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def guess_content_type(name: str) -> str:
    """The MIME type for a name's extension; compressed files are their archive type, not the inner one."""
    suffix = Path(name).suffix.lower()
    if suffix in _TYPES:
        return _TYPES[suffix]
    kind, encoding = _MIME.guess_type(name, strict=False)
    if encoding == "gzip":
        return "application/gzip"
    if encoding is not None or kind is None:
        return "application/octet-stream"
    return kind


@dataclass(frozen=True)
class ArtifactInfo:
    name: str
    size: int
    content_type: str


class ArtifactStore(ABC):
    """Where artifacts live. Keys are store-relative (``runs/...``) and validated by every method.

    ``put`` takes bytes, a binary file object (read to its end) or a path. ``open`` streams chunks and raises
    ArtifactNotFound before the first one. ``presigned_url`` is None where the store cannot make links.
    ``delete_prefix`` (retention) and ``list`` match a string prefix, as S3 does; ``list`` is sorted by key.
    ``promote`` publishes a staged folder (``jobs.batch`` commits its output with it).
    """

    url: str

    @abstractmethod
    def put(self, key: str, data: Data, content_type: str) -> ArtifactInfo: ...
    @abstractmethod
    def open(self, key: str) -> Iterator[bytes]: ...
    @abstractmethod
    def stat(self, key: str) -> ArtifactInfo: ...
    @abstractmethod
    def presigned_url(self, key: str, expires_s: int = 3600, *, content_type: str | None = None) -> str | None: ...
    @abstractmethod
    def delete_prefix(self, prefix: str) -> int: ...
    @abstractmethod
    def list(self, prefix: str = "") -> list[ArtifactInfo]: ...
    @abstractmethod
    def promote(self, source: str, target: str) -> None:
        """Make every file in folder ``source`` appear in folder ``target`` under the same relative name, the
        cheapest way the store has: a rename on disk (``source`` is emptied), a server-side copy on S3 (delete
        ``source`` afterwards). Safe to repeat after a crash half-way."""


class LocalStore(ArtifactStore):
    """A folder. Files sit at ``<root>/<key>`` so people can browse them; content types and temp files sit
    in ``<root>/.store/``, which keys may not use. Writes are atomic: temp file, fsync, ``os.replace``."""

    META = ".store"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.url = str(self.root)

    def _path(self, key: str, base: Path | None = None) -> Path:
        key = validate_name(key)
        if base is None and key.split("/", 1)[0] == self.META:
            raise InvalidInput(f"Artifact key {key!r} is not allowed: {self.META!r} is reserved by the store.")
        path = ((base or self.root) / key).resolve()
        if not path.is_relative_to(self.root):  # e.g. a symlink inside the store that points out of it
            raise InvalidInput(f"Artifact key {key!r} resolves outside the store {self.url!r}.")
        return path

    def _meta(self, key: str) -> Path:
        return self._path(key + ".json", self.root / self.META / "meta")

    def _write(self, path: Path, data: Data) -> int:
        tmp_dir = self.root / self.META / "tmp"  # same file system as the target, so os.replace is atomic
        for folder in (tmp_dir, path.parent):
            folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=tmp_dir)
        try:
            with os.fdopen(fd, "wb") as out:
                size = _copy(data, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
            return size
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def put(self, key: str, data: Data, content_type: str) -> ArtifactInfo:
        path, meta = self._path(key), self._meta(key)
        size = self._write(path, data)
        self._write(meta, json.dumps({"content_type": content_type}).encode())
        return ArtifactInfo(validate_name(key), size, content_type)

    def open(self, key: str) -> Iterator[bytes]:
        try:
            handle = self._path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ArtifactNotFound(f"No artifact {key!r} in {self.url!r}.") from None
        return _chunks(handle)

    def stat(self, key: str) -> ArtifactInfo:
        path = self._path(key)
        if not path.is_file():
            raise ArtifactNotFound(f"No artifact {key!r} in {self.url!r}.")
        try:
            content_type = str(json.loads(self._meta(key).read_bytes())["content_type"])
        except (OSError, ValueError, KeyError, TypeError):
            content_type = guess_content_type(key)
        return ArtifactInfo(validate_name(key), path.stat().st_size, content_type)

    def presigned_url(self, key: str, expires_s: int = 3600, *, content_type: str | None = None) -> str | None:
        return None

    def _keys(self, prefix: str) -> Iterator[str]:
        for dirpath, dirnames, filenames in os.walk(self.root / prefix.rpartition("/")[0]):
            here = Path(dirpath).relative_to(self.root).as_posix()
            if here == ".":
                dirnames[:] = [d for d in dirnames if d != self.META]
            for filename in filenames:
                key = filename if here == "." else f"{here}/{filename}"
                if key.startswith(prefix):
                    yield key

    def delete_prefix(self, prefix: str) -> int:
        count = 0
        folders: set[Path] = set()
        for key in list(self._keys(_validate_prefix(prefix, allow_empty=False))):
            file, meta = self._path(key), self._meta(key)
            with contextlib.suppress(FileNotFoundError):
                file.unlink()
                count += 1
            with contextlib.suppress(FileNotFoundError):
                meta.unlink()
            folders.update((file.parent, meta.parent))
        for folder in sorted(folders, key=lambda item: len(item.parts), reverse=True):
            self._prune(folder)
        return count

    def _prune(self, folder: Path) -> None:
        """Remove ``folder`` and the folders above it that are left empty, up to the store's own (a deleted run
        leaves no ``runs/<fn>/<id>/`` behind)."""
        stop = {self.root, self.root / self.META, self.root / self.META / "meta"}
        while folder not in stop and folder.is_relative_to(self.root):
            try:
                folder.rmdir()
            except OSError:  # not empty (or gone): what is above it is not empty either
                return
            folder = folder.parent

    def list(self, prefix: str = "") -> list[ArtifactInfo]:
        return [self.stat(key) for key in sorted(self._keys(_validate_prefix(prefix, allow_empty=True)))]

    def promote(self, source: str, target: str) -> None:
        source, target = validate_name(source), validate_name(target)
        for base in (self.root, self.root / self.META / "meta"):  # the files, and their content types
            origin, destination = self._path(source, base), self._path(target, base)
            if not origin.is_dir():
                continue  # promoted by an attempt that died before finishing (or nothing staged)
            if not destination.exists():
                destination.parent.mkdir(parents=True, exist_ok=True)
                os.replace(origin, destination)
                continue
            for path in sorted(p for p in origin.rglob("*") if p.is_file()):  # the target already has files
                moved = destination / path.relative_to(origin)
                moved.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, moved)


def _copy(data: Data, out: BinaryIO) -> int:
    if isinstance(data, bytes | bytearray | memoryview):
        return out.write(data)
    if isinstance(data, Path):
        with data.open("rb") as source:
            return _copy(source, out)
    size = 0
    while chunk := data.read(CHUNK_SIZE):
        size += out.write(chunk)
    return size


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK_SIZE):
            yield chunk
