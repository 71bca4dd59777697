"""Triggering runs through the API and waiting for them to finish."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.support.procs import wait_for


def trigger(client: TestClient, name: str, payload: dict[str, Any] | None = None) -> str:
    response = client.post(f"/.netlify/functions/{name}", json=payload or {})
    assert response.status_code == 202, response.text
    return str(response.headers["x-nf-request-id"])


def finished(client: TestClient, run_id: str, timeout: float = 60.0) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        run: dict[str, Any] = client.get(f"/api/runs/{run_id}").json()
        return run if run["status"] in ("succeeded", "failed", "cancelled") else None

    return wait_for(done, timeout=timeout, message=f"run {run_id} to finish")
