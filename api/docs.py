"""``/api/docs``: Swagger UI for ``/openapi.json``, with every asset served by the API itself.

FastAPI's own docs page loads Swagger UI from a CDN: blank offline, and third-party script running on the
API's (and dashboard's) origin. Here the page, its script and its stylesheet come from this process: the
Swagger UI build is the one the ``fastapi-offline`` package ships (installed with Backburner, upgraded
with it), and the page's own start-up script is a file too, so a strict Content-Security-Policy
(``script-src 'self'``) holds on the page.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.exceptions import HTTPException

router = APIRouter(include_in_schema=False)

#: The Swagger UI build shipped by fastapi-offline.
SWAGGER_DIR = Path(str(files("fastapi_offline") / "static"))
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon.png": "image/png",
}
INIT_JS = """window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
"""
PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Backburner API</title>
<link rel="icon" href="/api/docs/favicon.png">
<link rel="stylesheet" href="/api/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/api/docs/swagger-ui-bundle.js"></script>
<script src="/api/docs/init.js"></script>
</body>
</html>
"""
#: Swagger UI sets inline styles, so style-src needs 'unsafe-inline'; scripts stay same-origin files.
HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


@router.get("/api/docs")
async def docs_page() -> HTMLResponse:
    return HTMLResponse(PAGE, headers=HEADERS)


@router.get("/api/docs/init.js")
async def docs_init() -> Response:
    return Response(INIT_JS, media_type="text/javascript; charset=utf-8", headers=HEADERS)


@router.get("/api/docs/{asset}")
async def docs_asset(asset: str) -> FileResponse:
    if asset not in ASSETS:
        raise HTTPException(404, f"No docs asset {asset[:60]!r}.")
    return FileResponse(
        SWAGGER_DIR / asset, media_type=ASSETS[asset], headers={**HEADERS, "cache-control": "public, max-age=86400"}
    )
