"""A run remembers the artifact store it wrote to: its files stay downloadable after BACKBURNER_ARTIFACTS moves
from a folder to S3 (moto's server over HTTP) and back, and after the function's own ``artifacts`` changes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from jobs.settings import Settings
from tests.support.procs import WorkerProc, wait_for
from tests.support.s3 import s3_client

from .helpers import finished, trigger

NAME = "flaky-store-background"  # writes out.txt ("attempt N") and succeeds at once


@contextmanager
def deployment(site: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """A worker process and an API configured by ``env`` (as after a redeploy with new settings)."""
    for key in ("BACKBURNER_ARTIFACTS", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    worker = WorkerProc(site, env).start()
    try:
        with TestClient(create_app(Settings()), base_url="http://localhost") as client:  # dev: loopback Host only
            yield client
    finally:
        worker.stop()


def text_of(client: TestClient, run: dict[str, object]) -> str:
    response = client.get(f"/api/runs/{run['id']}/artifacts/out.txt", params={"redirect": "0"})
    assert response.status_code == 200, response.text
    return response.text


def test_old_runs_artifacts_stay_downloadable_when_the_store_changes(
    site, env, tmp_path, s3_bucket, s3_endpoint, monkeypatch
):
    folder = tmp_path / "folder-store"
    on_folder = {k: v for k, v in env.items() if k not in ("BACKBURNER_ARTIFACTS", "AWS_ENDPOINT_URL")}
    on_folder["BACKBURNER_ARTIFACTS"] = str(folder)
    on_s3 = {**env, "BACKBURNER_ARTIFACTS": f"s3://{s3_bucket}/pfx", "AWS_ENDPOINT_URL": s3_endpoint}

    with deployment(site, on_folder, monkeypatch) as client:
        old = finished(client, trigger(client, NAME))
        assert old["status"] == "succeeded" and old["artifact_store"] == str(folder)
        assert (folder / "runs" / NAME / old["id"] / "out.txt").read_text() == "attempt 1"

    with deployment(site, on_s3, monkeypatch) as client:
        # The default store is S3 now, where the old run's file never was: it is still served, from the folder.
        assert text_of(client, old) == "attempt 1"
        assert client.get(f"/api/runs/{old['id']}/artifacts/out.txt").status_code == 200  # streamed, no redirect
        new = finished(client, trigger(client, NAME))
        assert new["status"] == "succeeded" and new["artifact_store"] == f"s3://{s3_bucket}/pfx"
        key = f"pfx/runs/{NAME}/{new['id']}/out.txt"
        assert s3_client(s3_endpoint).get_object(Bucket=s3_bucket, Key=key)["Body"].read() == b"attempt 1"

        # The function's own `artifacts` changes too (an edit while the API runs): both runs keep their store.
        elsewhere = tmp_path / "function-store"
        toml = site / "netlify.toml"
        table = f'[backburner.functions."{NAME}"]\n'
        toml.write_text(toml.read_text().replace(table, f'{table}  artifacts = "{elsewhere}"\n'))

        def moved() -> bool:
            listing = {f["name"]: f for f in client.get("/api/functions").json()}
            return bool(listing[NAME]["destinations"]["artifacts"] == str(elsewhere))

        wait_for(moved, timeout=30, message="the API to see the edited netlify.toml")
        assert text_of(client, old) == "attempt 1" and text_of(client, new) == "attempt 1"

    # Back on a folder. S3's endpoint and credentials still come from the environment (a run records its
    # store's URL, not how to reach S3), so they stay set for the runs kept there.
    with deployment(site, {**on_folder, "AWS_ENDPOINT_URL": s3_endpoint}, monkeypatch) as client:
        # The S3 run still answers with a redirect to its object on S3.
        redirect = client.get(f"/api/runs/{new['id']}/artifacts/out.txt", follow_redirects=False)
        assert redirect.status_code == 307
        assert redirect.headers["location"].startswith(f"{s3_endpoint}/{s3_bucket}/{key}?")
        assert text_of(client, new) == "attempt 1" and text_of(client, old) == "attempt 1"
