"""The FastAPI app: routers and error translation (structured JSON, never a stack trace)."""

from __future__ import annotations

from fastapi import FastAPI

from services.config.api.docs import install_docs
from services.config.api.errors import install_error_handlers
from services.config.api.limits import BodySizeLimit
from services.config.api.routes import (
    account_health,
    accounts,
    archive,
    attachments,
    cases,
    catalogue,
    credentials,
    failed,
    fetchers,
    health,
    outbox,
    outgoing,
    outgoing_test,
    scripts,
    settings,
    suppressions,
    transfer,
    users,
)
from services.config.web.install import install_console
from shared.runtime import Runtime


def create_api(rt: Runtime) -> FastAPI:
    """The config service's HTTP API bound to ``rt``."""
    # /docs and /redoc come from vendored assets (install_docs), not FastAPI's CDN pages.
    # The OpenAPI document too, closed unless MAILROOM_API_DOCS_PUBLIC (install_docs).
    api = FastAPI(
        title="Mailroom config service",
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    api.state.runtime = rt
    for module in (
        health,
        accounts,
        account_health,
        credentials,
        outgoing,
        outgoing_test,
        settings,
        scripts,
        catalogue,
        failed,
        suppressions,
        fetchers,
        archive,
        attachments,
        transfer,
        users,
        cases,
        outbox,
    ):
        api.include_router(module.router)

    install_docs(api, title=api.title)
    install_console(api)
    install_error_handlers(api)
    api.add_middleware(BodySizeLimit)
    return api
