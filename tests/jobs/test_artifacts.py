"""The artifact store: name rules, the local folder store, and S3 against a real (moto) server over HTTP."""

from __future__ import annotations

import io
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from jobs.artifacts import (
    ArtifactInfo,
    ArtifactNotFound,
    LocalStore,
    guess_content_type,
    open_store,
    run_key,
    validate_name,
)
from jobs.artifacts.s3 import S3Store
from jobs.errors import ConfigError, DeliveryError, InvalidInput
from tests.support.s3 import free_port, no_credentials_env, patched_env, presign_problem, s3_client

MiB = 1024 * 1024


class OneWay(io.RawIOBase):
    """A non-seekable stream, like a pipe or a socket."""

    def __init__(self, data: bytes, fail_after: int | None = None) -> None:
        self._data, self._pos, self._fail_after = data, 0, fail_after

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if self._fail_after is not None and self._pos >= self._fail_after:
            raise OSError("the producer died")
        size = len(self._data) if size is None or size < 0 else size
        chunk = self._data[self._pos : self._pos + size]
        self._pos += len(chunk)
        return chunk


def payload(size: int) -> bytes:
    return (b"0123456789abcdef" * (size // 16 + 1))[:size]


# -- names ------------------------------------------------------------------------------------------------

GOOD_NAMES = [
    "report.csv",
    "reports/2024/summary.csv",
    "with space.txt",
    ".hidden",
    "a..b/..c/d..",
    "ünïcödé/файл.txt",
    "x" * 1024,
]


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_good_names_pass_unchanged(name: str) -> None:
    assert validate_name(name) == name


def test_names_are_nfc_normalised() -> None:
    assert validate_name("cafe\u0301.txt") == "caf\u00e9.txt"


BAD_NAMES = [
    ("", "empty"),
    ("/etc/passwd", "absolute path"),
    ("C:/Windows/x", "drive letter"),
    ("a:b.txt", "drive letter"),
    ("C:\\Windows\\x", "backslash"),
    ("a\\b", "backslash"),
    ("..", "'..' segment"),
    ("../secret", "'..' segment"),
    ("a/../../b", "'..' segment"),
    (".", "'.' segment"),
    ("./a", "'.' segment"),
    ("a/./b", "'.' segment"),
    ("a//b", "empty segment"),
    ("dir/", "ends with '/'"),
    ("a\x00b", "control character"),
    ("a\nb", "control character"),
    ("tab\there", "control character"),
    ("del\x7f", "control character"),
    ("\u0085.txt", "invisible or control character (U+0085)"),
    ("\u202ereport.txt", "invisible or control character (U+202E)"),
    ("a\u200b.txt", "invisible or control character (U+200B)"),
    ("x" * 1025, "longer than 1024 bytes"),
    ("é" * 513, "longer than 1024 bytes"),
]


@pytest.mark.parametrize(("name", "rule"), BAD_NAMES)
def test_bad_names_are_refused_with_the_rule(name: str, rule: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_name(name)
    assert rule in caught.value.message
    assert repr(name)[:60] in caught.value.message
    assert caught.value.status == 400


def test_run_key() -> None:
    assert run_key("daily-report", "r123", "out/a.csv") == "runs/daily-report/r123/out/a.csv"
    for function, run_id, name in [
        ("a/b", "r1", "x"),
        ("fn", "a/b", "x"),
        ("fn", "..", "x"),
        ("fn", "r1", "../x"),
    ]:
        with pytest.raises(InvalidInput, match="Function name|Run id|Artifact name"):
            run_key(function, run_id, name)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.parquet", "application/vnd.apache.parquet"),
        ("a.jsonl", "application/jsonl"),
        ("a.csv", "text/csv"),
        ("A.CSV", "text/csv"),
        ("a.json", "application/json"),
        ("a.html", "text/html"),
        ("a.png", "image/png"),
        ("a.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ("a.csv.gz", "application/gzip"),
        ("no-extension", "application/octet-stream"),
        ("a.weird-ext", "application/octet-stream"),
    ],
)
def test_guess_content_type(name: str, expected: str) -> None:
    assert guess_content_type(name) == expected


def test_open_store_picks_the_backend(tmp_path: Path) -> None:
    s3 = open_store("s3://my-bucket/some/prefix/", endpoint_url="http://127.0.0.1:1")
    assert isinstance(s3, S3Store)
    assert (s3.bucket, s3.prefix, s3.url) == ("my-bucket", "some/prefix", "s3://my-bucket/some/prefix")
    assert open_store("s3://my-bucket").url == "s3://my-bucket"
    assert isinstance(open_store(str(tmp_path)), LocalStore)
    assert open_store(f"file://{tmp_path}").url == str(tmp_path.resolve())
    for bad in ["s3://", "s3:///prefix", "s3://Bad_Bucket/x", "gs://bucket/x"]:
        with pytest.raises(ConfigError, match="s3://bucket/prefix"):
            open_store(bad)


# -- the local store --------------------------------------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "artifacts")


def test_local_put_open_stat_all_kinds_of_data(local: LocalStore, tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(payload(3 * MiB + 5))
    assert local.put("runs/f/1/bytes.txt", b"hello", "text/plain; charset=utf-8") == ArtifactInfo(
        "runs/f/1/bytes.txt", 5, "text/plain; charset=utf-8"
    )
    assert local.put("runs/f/1/file.bin", source, "application/x-test").size == 3 * MiB + 5
    assert local.put("runs/f/1/stream", OneWay(b"streamed"), "text/plain").size == 8

    chunks = list(local.open("runs/f/1/file.bin"))
    assert len(chunks) > 1 and b"".join(chunks) == source.read_bytes()
    assert b"".join(local.open("runs/f/1/stream")) == b"streamed"
    assert (local.root / "runs/f/1/bytes.txt").read_bytes() == b"hello"  # browsable as plain files
    assert local.stat("runs/f/1/bytes.txt").content_type == "text/plain; charset=utf-8"
    assert local.stat("runs/f/1/file.bin") == ArtifactInfo("runs/f/1/file.bin", 3 * MiB + 5, "application/x-test")
    assert local.presigned_url("runs/f/1/bytes.txt") is None


def test_local_missing_artifact(local: LocalStore) -> None:
    with pytest.raises(ArtifactNotFound) as caught:
        local.open("runs/f/1/nope.csv")
    assert caught.value.status == 404
    with pytest.raises(ArtifactNotFound):
        local.stat("runs/f/1/nope.csv")
    local.put("runs/f/1/a", b"x", "text/plain")
    with pytest.raises(ArtifactNotFound):
        local.open("runs/f/1")  # a folder is not an artifact


def test_local_list_and_delete_prefix(local: LocalStore) -> None:
    for key in ["runs/f/1/a.csv", "runs/f/1/sub/b.json", "runs/f/10/c.txt", "runs/g/1/d.txt"]:
        local.put(key, key.encode(), guess_content_type(key))
    assert [i.name for i in local.list("runs/f/1/")] == ["runs/f/1/a.csv", "runs/f/1/sub/b.json"]
    assert [i.name for i in local.list("runs/f/1")] == [
        "runs/f/1/a.csv",
        "runs/f/1/sub/b.json",
        "runs/f/10/c.txt",
    ]
    assert len(local.list()) == 4  # the store's own bookkeeping is not listed
    assert local.list("runs/f/1/")[1] == ArtifactInfo("runs/f/1/sub/b.json", 19, "application/json")
    assert local.list("nothing/here/") == []

    assert local.delete_prefix("runs/f/1/") == 2
    assert [i.name for i in local.list()] == ["runs/f/10/c.txt", "runs/g/1/d.txt"]
    with pytest.raises(ArtifactNotFound):
        local.stat("runs/f/1/a.csv")
    assert local.delete_prefix("runs/f/1/") == 0
    # No empty folder is left behind, of the files or of their bookkeeping; folders still in use stay.
    folders = lambda: sorted(str(p.relative_to(local.root)) for p in local.root.rglob("*") if p.is_dir())  # noqa: E731
    assert not any(folder.endswith(("f/1", "f/1/sub", "f/1.json")) for folder in folders()), folders()
    assert local.delete_prefix("runs/f/10/") == 1 and local.delete_prefix("runs/g/") == 1
    assert [folder for folder in folders() if not folder.startswith(".store/tmp")] == [".store", ".store/meta"]
    with pytest.raises(InvalidInput, match="whole store"):
        local.delete_prefix("")


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_promote_publishes_a_staged_folder_and_can_be_repeated(backend: str, request: pytest.FixtureRequest) -> None:
    store: LocalStore | S3Store = request.getfixturevalue(backend)
    store.put("runs/f/1/_staging/out/a.csv", b"a\n", "text/csv")
    store.put("runs/f/1/_staging/out/sub/b.bin", b"b", "application/x-thing")
    store.put("runs/f/1/out/old.txt", b"o", "text/plain")  # the target already has a file: it stays
    store.promote("runs/f/1/_staging/out", "runs/f/1/out")
    store.promote("runs/f/1/_staging/out", "runs/f/1/out")  # a retry after a crash: nothing new, nothing lost
    names = [i.name for i in store.list("runs/f/1/out/")]
    assert names == ["runs/f/1/out/a.csv", "runs/f/1/out/old.txt", "runs/f/1/out/sub/b.bin"]
    assert b"".join(store.open("runs/f/1/out/a.csv")) == b"a\n"
    assert store.stat("runs/f/1/out/sub/b.bin").content_type == "application/x-thing"
    with pytest.raises(InvalidInput):
        store.promote("runs/f/1/_staging/out", "runs/../../elsewhere")


def test_local_overwrite_is_atomic_and_failed_writes_leave_no_trace(local: LocalStore) -> None:
    local.put("runs/f/1/out.csv", b"old,content\n", "text/csv")
    with pytest.raises(OSError, match="producer died"):
        local.put("runs/f/1/out.csv", OneWay(payload(3 * MiB), fail_after=2 * MiB), "text/csv")
    assert b"".join(local.open("runs/f/1/out.csv")) == b"old,content\n"
    assert list((local.root / LocalStore.META / "tmp").iterdir()) == []
    assert [i.name for i in local.list()] == ["runs/f/1/out.csv"]

    local.put("runs/f/1/out.csv", b"new", "text/plain")
    assert local.stat("runs/f/1/out.csv") == ArtifactInfo("runs/f/1/out.csv", 3, "text/plain")


def test_local_store_never_escapes_its_root(local: LocalStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    local.root.mkdir(parents=True)
    os.symlink(outside, local.root / "link")
    with pytest.raises(InvalidInput, match="outside the store"):
        local.put("link/evil.txt", b"x", "text/plain")
    assert list(outside.iterdir()) == []
    for key in ["../evil.txt", "/etc/evil", "runs/../../evil"]:
        with pytest.raises(InvalidInput):
            local.put(key, b"x", "text/plain")
    with pytest.raises(InvalidInput, match="reserved"):
        local.put(".store/tmp/x", b"x", "text/plain")
    assert not (tmp_path / "evil.txt").exists()


# -- S3 against the moto server ---------------------------------------------------------------------------


@pytest.fixture
def s3(s3_endpoint: str, s3_bucket: str) -> S3Store:
    return S3Store(s3_bucket, "site-a", endpoint_url=s3_endpoint)


def test_s3_put_open_stat_all_kinds_of_data(s3: S3Store, s3_endpoint: str, tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(payload(2 * MiB + 3))
    assert s3.put("runs/f/1/a.txt", b"hello", "text/plain; charset=utf-8") == ArtifactInfo(
        "runs/f/1/a.txt", 5, "text/plain; charset=utf-8"
    )
    assert s3.put("runs/f/1/file.bin", source, "application/x-test").size == 2 * MiB + 3
    assert s3.put("runs/f/1/stream.csv", OneWay(b"a,b\n1,2\n"), "text/csv").size == 8

    raw = s3_client(s3_endpoint).get_object(Bucket=s3.bucket, Key="site-a/runs/f/1/a.txt")
    assert raw["ContentType"] == "text/plain; charset=utf-8" and raw["Body"].read() == b"hello"
    assert s3.stat("runs/f/1/file.bin") == ArtifactInfo("runs/f/1/file.bin", 2 * MiB + 3, "application/x-test")
    chunks = list(s3.open("runs/f/1/file.bin"))
    assert len(chunks) > 1 and b"".join(chunks) == source.read_bytes()
    assert b"".join(s3.open("runs/f/1/stream.csv")) == b"a,b\n1,2\n"


def test_s3_missing_object_and_missing_bucket(s3: S3Store, s3_endpoint: str) -> None:
    with pytest.raises(ArtifactNotFound):
        s3.stat("runs/f/1/nope")
    with pytest.raises(ArtifactNotFound):
        s3.open("runs/f/1/nope")
    with pytest.raises(DeliveryError, match="create the bucket") as caught:
        S3Store("no-such-bucket-here", endpoint_url=s3_endpoint).put("a", b"x", "text/plain")
    assert s3_endpoint in caught.value.message and "no-such-bucket-here" in caught.value.message


@pytest.mark.parametrize("as_stream", [False, True], ids=["bytes", "stream"])
def test_s3_multipart_above_the_threshold(s3_endpoint: str, s3_bucket: str, as_stream: bool) -> None:
    store = S3Store(s3_bucket, endpoint_url=s3_endpoint, multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    data = payload(6 * MiB)
    info = store.put("big.bin", OneWay(data) if as_stream else data, "application/octet-stream")
    assert info.size == 6 * MiB
    store.put("small.bin", b"tiny", "application/octet-stream")
    client = s3_client(s3_endpoint)
    assert client.head_object(Bucket=s3_bucket, Key="big.bin")["ETag"].strip('"').endswith("-2")
    assert "-" not in client.head_object(Bucket=s3_bucket, Key="small.bin")["ETag"]
    assert b"".join(store.open("big.bin")) == data


def test_s3_presigned_url(s3: S3Store) -> None:
    s3.put("runs/f/1/report.csv", b"x,y\n1,2\n", "text/csv")
    url = s3.presigned_url("runs/f/1/report.csv", expires_s=120)
    assert url is not None
    response = httpx.get(url)
    assert response.status_code == 200 and response.content == b"x,y\n1,2\n"
    assert response.headers["content-type"] == "text/csv"

    query = dict(parse_qsl(urlsplit(url).query))
    assert query["X-Amz-Expires"] == "120"
    signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert presign_problem(url) is None
    assert presign_problem(url, now=signed_at + timedelta(seconds=121)) == "expired"
    other_key = url.replace("report.csv", "secret.csv")
    assert presign_problem(other_key) == "signature does not match"
    longer = urlsplit(url)._replace(query=urlencode({**query, "X-Amz-Expires": "604800"})).geturl()
    assert presign_problem(longer) == "signature does not match"


def test_s3_list_and_delete_prefix(s3: S3Store, s3_endpoint: str) -> None:
    for key in ["runs/f/1/a.csv", "runs/f/1/sub/b.json", "runs/f/10/c.txt", "runs/g/1/d.txt"]:
        s3.put(key, key.encode(), "text/plain")
    assert [i.name for i in s3.list("runs/f/1/")] == ["runs/f/1/a.csv", "runs/f/1/sub/b.json"]
    assert s3.list("runs/f/1/")[1] == ArtifactInfo("runs/f/1/sub/b.json", 19, "application/json")
    assert len(s3.list()) == 4
    assert s3.delete_prefix("runs/f/1/") == 2
    assert [i.name for i in s3.list()] == ["runs/f/10/c.txt", "runs/g/1/d.txt"]
    listed = s3_client(s3_endpoint).list_objects_v2(Bucket=s3.bucket)["Contents"]
    assert sorted(o["Key"] for o in listed) == ["site-a/runs/f/10/c.txt", "site-a/runs/g/1/d.txt"]
    with pytest.raises(InvalidInput):
        s3.delete_prefix("")


def test_s3_endpoint_from_the_environment(s3_endpoint: str, s3_bucket: str) -> None:
    with patched_env({"AWS_ENDPOINT_URL": s3_endpoint}):
        store = open_store(f"s3://{s3_bucket}/env")
        store.put("a.txt", b"via env", "text/plain")
        assert b"".join(store.open("a.txt")) == b"via env"


def test_s3_client_is_created_once_across_threads(s3: S3Store) -> None:
    barrier = threading.Barrier(8)
    clients: list[object] = []

    def grab() -> None:
        barrier.wait()
        clients.append(s3._client())

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(clients) == 8 and len({id(c) for c in clients}) == 1


def test_s3_store_down_fails_fast_naming_endpoint_and_bucket() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    store = S3Store("reports", endpoint_url=endpoint, connect_timeout=1, read_timeout=1, max_attempts=2)
    with patched_env({"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "sup3r-s3cret-value"}):
        started = time.monotonic()
        with pytest.raises(DeliveryError) as caught:
            store.put("runs/f/1/a.txt", b"x", "text/plain")
        assert time.monotonic() - started < 5
    assert endpoint in caught.value.message and "'reports'" in caught.value.message
    assert "sup3r-s3cret-value" not in caught.value.message
    with pytest.raises(DeliveryError):
        list(store.open("runs/f/1/a.txt"))


def test_s3_missing_credentials_say_what_to_set(s3_endpoint: str, s3_bucket: str) -> None:
    with patched_env(no_credentials_env()):
        store = S3Store(s3_bucket, endpoint_url=s3_endpoint)
        for action in (
            lambda: store.put("a.txt", b"x", "text/plain"),
            lambda: store.presigned_url("a.txt"),
        ):
            with pytest.raises(ConfigError) as caught:
                action()
            assert "AWS_ACCESS_KEY_ID" in caught.value.message and "AWS_SECRET_ACCESS_KEY" in caught.value.message


def test_presigned_links_download_as_attachments_with_the_artifacts_type(s3: S3Store) -> None:
    s3.put("runs/f/1/report é.html", b"<script>alert(1)</script>", "text/html; charset=utf-8")
    html = httpx.get(s3.presigned_url("runs/f/1/report é.html", 60, content_type="text/html; charset=utf-8"))
    assert html.status_code == 200 and html.content == b"<script>alert(1)</script>"
    disposition = html.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="report _.html"')  # saved, never rendered inline
    assert disposition.endswith("filename*=UTF-8''report%20%C3%A9.html")
    assert html.headers["content-type"] == "text/html; charset=utf-8"
    s3.put("runs/f/1/data", b"a,b\n", "application/octet-stream")
    typed = httpx.get(s3.presigned_url("runs/f/1/data", 60, content_type="text/csv"))
    assert typed.headers["content-type"] == "text/csv"  # the type recorded on the run wins
