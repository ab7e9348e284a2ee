"""``/docs`` (Swagger UI) and ``/redoc`` from assets installed with Mailroom, never a CDN:
the API documentation works on a machine without internet.

The assets come from the ``fastapi-offline`` package (its ``static`` directory: Swagger UI's
``swagger-ui-bundle.js`` and ``swagger-ui.css``, ReDoc's ``redoc.standalone.js``, a favicon);
only its files are used, mounted with StaticFiles under :data:`ASSETS`. It was chosen over
``swagger-ui-bundle`` (Swagger UI 4, which cannot render the OpenAPI 3.1 FastAPI writes) and
``swagger-ui-py`` (25 MB, and it installs a top-level ``test`` package). Swagger UI's online
validator badge is switched off (``validatorUrl: null``) and ReDoc's Google fonts are not
loaded, so the pages make no request off the host.

``/docs``, ``/redoc`` and ``/openapi.json`` are closed like every other route but the probes
and metrics: they need a token (any role) unless ``MAILROOM_API_DOCS_PUBLIC=true`` opens them,
e.g. on a development machine. A map of every route is reconnaissance an attacker should
not get for free; the assets (Swagger UI's own files) stay open, they reveal nothing.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.config.api.deps import require_viewer

ASSETS = "/docs/assets"
"""Where the vendored Swagger UI and ReDoc files are served."""


def assets_dir() -> Path:
    """The installed directory of Swagger UI and ReDoc files."""
    return Path(str(files("fastapi_offline") / "static"))


class DocsSettings(BaseSettings):
    """``MAILROOM_API_DOCS_PUBLIC``: serve the API documentation without a token."""

    model_config = SettingsConfigDict(
        env_prefix="MAILROOM_API_DOCS_", env_ignore_empty=True, extra="ignore"
    )

    public: bool = False


def install_docs(api: FastAPI, *, title: str, public: bool | None = None) -> None:
    """Serve ``/openapi.json``, ``/docs`` and ``/redoc`` (from the vendored assets); closed
    behind a token unless ``public`` (default: ``MAILROOM_API_DOCS_PUBLIC``). The app must
    not serve the document itself (``openapi_url=None``)."""
    assert api.openapi_url is None, "the OpenAPI document is served here"
    openapi_url = "/openapi.json"
    opened = DocsSettings().public if public is None else public
    guard: list[Any] = [] if opened else [Depends(require_viewer)]
    api.mount(ASSETS, StaticFiles(directory=assets_dir()), name="docs-assets")

    @api.get(openapi_url, include_in_schema=False, dependencies=guard)
    async def openapi() -> JSONResponse:
        return JSONResponse(api.openapi())

    @api.get("/docs", include_in_schema=False, dependencies=guard)
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

    @api.get("/redoc", include_in_schema=False, dependencies=guard)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{title} — API",
            redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS}/favicon.png",
            with_google_fonts=False,
        )
