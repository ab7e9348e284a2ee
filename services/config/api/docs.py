"""``/docs`` (Swagger UI) and ``/redoc`` from assets installed with Mailroom, never a CDN:
the API documentation works on a machine without internet.

The assets come from the ``fastapi-offline`` package (its ``static`` directory: Swagger UI's
``swagger-ui-bundle.js`` and ``swagger-ui.css``, ReDoc's ``redoc.standalone.js``, a favicon);
only its files are used, mounted with StaticFiles under :data:`ASSETS`. It was chosen over
``swagger-ui-bundle`` (Swagger UI 4, which cannot render the OpenAPI 3.1 FastAPI writes) and
``swagger-ui-py`` (25 MB, and it installs a top-level ``test`` package). Swagger UI's online
validator badge is switched off (``validatorUrl: null``) and ReDoc's Google fonts are not
loaded, so the pages make no request off the host.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"
"""Where the vendored Swagger UI and ReDoc files are served."""


def assets_dir() -> Path:
    """The installed directory of Swagger UI and ReDoc files."""
    return Path(str(files("fastapi_offline") / "static"))


def install_docs(api: FastAPI, *, title: str) -> None:
    """Serve ``/docs`` and ``/redoc`` for the app's OpenAPI document (which must be served:
    ``api.openapi_url`` set) from the vendored assets."""
    openapi_url = api.openapi_url
    assert openapi_url is not None, "the docs need the OpenAPI document"
    api.mount(ASSETS, StaticFiles(directory=assets_dir()), name="docs-assets")

    @api.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{title} — API",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

    @api.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{title} — API",
            redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS}/favicon.png",
            with_google_fonts=False,
        )
