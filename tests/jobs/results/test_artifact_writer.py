"""``context.artifacts`` on its own, against a real local folder store: kinds of data and refusals."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from jobs.artifacts.writer import ArtifactWriter
from jobs.errors import InvalidInput


@pytest.fixture
def writer(tmp_path: Path) -> ArtifactWriter:
    return ArtifactWriter(str(tmp_path / "store"), "fn", "01RUN")


def stored(writer: ArtifactWriter, name: str) -> bytes:
    return (Path(writer.store_url) / "runs" / "fn" / "01RUN" / name).read_bytes()


def test_kinds_of_data_and_their_records(writer: ArtifactWriter, tmp_path: Path) -> None:
    source = tmp_path / "in.bin"
    source.write_bytes(b"\x00" * 5000)
    assert writer.write("a/ü.txt", "héllo") == {
        "name": "a/ü.txt",
        "size": 6,
        "content_type": "text/plain; charset=utf-8",
        "url": "/api/runs/01RUN/artifacts/a/%C3%BC.txt",
    }
    writer.write("b.bin", bytearray(b"xy"))
    writer.write("c.dat", source, content_type="application/x-custom")
    writer.write("d.bin", io.BytesIO(b"stream"))
    writer.write("e.json", pd.DataFrame({"k": [1, 2]}))
    grouped = pd.DataFrame({"g": ["a", "b", "a"], "v": [1, 2, 3]}).groupby("g").sum()
    writer.write("f.csv", grouped)
    assert stored(writer, "a/ü.txt") == "héllo".encode()
    assert stored(writer, "c.dat") == b"\x00" * 5000
    assert stored(writer, "d.bin") == b"stream"
    assert stored(writer, "e.json") == b'[{"k":1},{"k":2}]'
    assert stored(writer, "f.csv") == b"g,v\na,4\nb,2\n"  # a meaningful index is kept
    kinds = {w["name"]: w["content_type"] for w in writer.written}
    assert kinds["c.dat"] == "application/x-custom" and kinds["e.json"] == "application/json"


def test_rewriting_a_name_replaces_its_record(writer: ArtifactWriter) -> None:
    writer.write("x.txt", "one")
    writer.write("x.txt", "three")
    assert [(w["name"], w["size"]) for w in writer.written] == [("x.txt", 5)]
    assert stored(writer, "x.txt") == b"three"


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("../x.txt", "a", "'..' segment"),
        ("/abs.txt", "a", "absolute path"),
        ("a\\b.txt", "a", "backslash"),
        ("a\nb.txt", "a", "control character"),
        ("frame.txt", pd.DataFrame({"a": [1]}), "one of .csv, .parquet, .json, .xlsx"),
        ("x.json", {"a": 1}, "json.dumps"),
    ],
)
def test_refusals_say_why(writer: ArtifactWriter, name: str, data: object, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        writer.write(name, data)
    assert message in caught.value.message
    assert writer.written == []


def test_a_missing_file_is_refused(writer: ArtifactWriter, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="is not a file"):
        writer.write("x.bin", tmp_path / "nope.bin")
