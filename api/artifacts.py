"""Artifact downloads: one run's file, or the newest successful run's copy (a stable "today's report" link).

A local store is streamed through the API. An S3 store answers with a 307 redirect to a short-lived
presigned URL, so large files do not pass through the API; ``?redirect=0`` streams instead (for clients that
cannot reach the S3 endpoint). Only artifacts recorded on the run (those of its successful attempt) are
served. Files are sent as attachments with ``nosniff`` and a sandbox CSP, so an HTML report cannot run
script on the API's origin.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from starlette.convertors import Convertor, register_url_convertor

from jobs.artifacts import MAX_NAME_BYTES, ArtifactNotFound, attachment, validate_name
from jobs.artifacts.s3 import S3Store
from jobs.artifacts.stores import run_prefix, run_store
from jobs.errors import DeliveryError, InvalidInput, StoreUnavailable
from jobs.runs import ArtifactRef, Run
from jobs.site import NAME_PATTERN

from .deps import Authorized, RunId, RuntimeDep, SingleValued
from .errors import responses

log = logging.getLogger("backburner.api")
router = APIRouter(prefix="/api", tags=["artifacts"], dependencies=[Authorized, SingleValued], responses=responses(404))

#: Presigned links in download redirects are for the client following the redirect now, not for sharing.
REDIRECT_EXPIRY_S = 300
#: How many of a function's newest successful runs "latest" looks through for the artifact.
LATEST_SCAN = 1000


def _find(run: Run, name: str) -> ArtifactRef:
    for ref in run.artifacts:
        if ref.name == name:
            return ref
    listed = ", ".join(repr(ref.name) for ref in run.artifacts[:10]) or "none"
    raise ArtifactNotFound(f"Run {run.id} ({run.status}) has no artifact {name!r}; it has: {listed}.")


def _serve(runtime: Any, run: Run, ref: ArtifactRef, redirect: bool | None) -> Response:
    """Open the artifact now (so a missing file is a 404, not a broken stream) and send it. What the store says
    goes to the log; the caller learns what it can act on, not where the store keeps its files."""
    try:
        return _open(runtime, run, ref, redirect)
    except (ArtifactNotFound, InvalidInput) as exc:  # recorded, but its file is gone (or was replaced by a link)
        log.warning("run %s: artifact %r cannot be served: %s", run.id, ref.name, exc.message)
        raise ArtifactNotFound(
            f"Run {run.id}'s artifact {ref.name!r} is recorded, but its file is no longer in the store."
        ) from None
    except DeliveryError as exc:  # the store did not answer, or refused us: ours to fix, not the caller's
        log.warning("run %s: artifact %r cannot be read: %s", run.id, ref.name, exc.message)
        raise StoreUnavailable("The artifact store cannot be read now (the API's log says why); try later.") from None


def _open(runtime: Any, run: Run, ref: ArtifactRef, redirect: bool | None) -> Response:
    store = run_store(runtime.settings, runtime.sites.lookup, run)
    key = run_prefix(run) + ref.name
    headers = {
        "content-disposition": attachment(ref.name),
        "x-content-type-options": "nosniff",
        "content-security-policy": "sandbox",
        "content-location": f"/api/runs/{run.id}/artifacts/{quote(ref.name, safe='/')}",
        "x-backburner-run-id": run.id,
    }
    if isinstance(store, S3Store) and redirect is not False:
        store.stat(key)  # 404 here rather than an S3 error page after the redirect
        url = store.presigned_url(key, REDIRECT_EXPIRY_S, content_type=ref.content_type)
        if url:
            return RedirectResponse(url, status_code=307, headers={"x-backburner-run-id": run.id})
    headers["content-length"] = str(store.stat(key).size)  # the stored object's, whatever the record says
    chunks = store.open(key)
    return StreamingResponse(chunks, media_type=ref.content_type, headers=headers)


class _AnyPath(Convertor[str]):
    """Starlette's ``path`` convertor, newlines included: its ``.*`` stops at one, so a name holding a newline
    matched no route and got a 404 instead of ``validate_name``'s 400 that says why."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anypath", _AnyPath())

#: An artifact name as the OpenAPI document states it: no control characters or backslashes, at most 1 KB. The
#: other rules (no '..', '.' or empty segments, not absolute) are checked by ``validate_name``: 400 with the rule.
ArtifactName = Annotated[
    str, Path(json_schema_extra={"pattern": r"^[^\x00-\x1f\x7f\\]+$", "maxLength": MAX_NAME_BYTES})
]

_FILE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"*/*": {}},
        "description": "The file, as an attachment, with its content type",
    },
    307: {"description": "S3 store: a presigned URL (valid 5 minutes) in Location"},
}


@router.get(
    "/runs/{run_id}/artifacts/{name:anypath}",
    summary="Download one artifact of a run",
    operation_id="download_artifact",
    response_class=Response,
    responses=_FILE,
)
def download(
    run_id: RunId,
    name: ArtifactName,
    runtime: RuntimeDep,
    redirect: bool | None = Query(None, description="S3 stores redirect to a presigned URL unless redirect=0"),
) -> Response:
    name = validate_name(name)  # the write rules (400 with the rule): no path can leave the run's folder
    run = runtime.store.get(run_id)
    return _serve(runtime, run, _find(run, name), redirect)


@router.get(
    "/functions/{function}/latest/artifacts/{name:anypath}",
    summary="Download an artifact of the function's newest successful run that has it",
    operation_id="latest_artifact",
    response_class=Response,
    responses=_FILE,
)
def latest(
    function: Annotated[str, Path(json_schema_extra={"pattern": NAME_PATTERN.pattern})],
    name: ArtifactName,
    runtime: RuntimeDep,
    redirect: bool | None = Query(None, description="S3 stores redirect to a presigned URL unless redirect=0"),
) -> Response:
    name = validate_name(name)
    if not NAME_PATTERN.match(function):
        raise InvalidInput(f"Function name {function[:60]!r} is not valid: use letters, digits, '_' and '-'.")
    run = _latest_run(runtime, function, name)
    return _serve(runtime, run, _find(run, name), redirect)


@router.get("/runs/{run_id}/artifacts", include_in_schema=False)
@router.get("/functions/{function}/latest/artifacts", include_in_schema=False)
def no_name() -> Response:
    """Without a name (Starlette would redirect to the trailing slash, and that to a 400 for an empty name)."""
    raise ArtifactNotFound("Name the artifact: .../artifacts/{name}; GET /api/runs/{id} lists a run's artifacts.")


def _latest_run(runtime: Any, function: str, name: str) -> Run:
    cursor: str | None = None
    seen = 0
    while seen < LATEST_SCAN:
        runs, cursor = runtime.store.runs(function=function, status="succeeded", limit=100, cursor=cursor)
        for run in runs:
            if any(ref.name == name for ref in run.artifacts):
                return run
        seen += len(runs)
        if cursor is None or not runs:
            break
    if seen == 0:
        runtime.function(function)  # FunctionNotFound (404) for a name the site does not know
        raise ArtifactNotFound(f"Function {function!r} has no successful run yet, so no artifact {name!r}.")
    if seen == 1:
        raise ArtifactNotFound(f"The one successful run of {function!r} has no artifact {name!r}.")
    newest = "newest " if cursor is not None else ""  # the scan stopped at LATEST_SCAN, before the oldest
    raise ArtifactNotFound(f"None of the {newest}{seen} successful runs of {function!r} has an artifact {name!r}.")
