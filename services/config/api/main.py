"""The FastAPI app: routers and error translation (structured JSON, never a stack trace)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.config.api.routes import (
    account_health,
    accounts,
    archive,
    failed,
    health,
    outgoing,
    outgoing_test,
    settings,
    transfer,
)
from shared.errors import ConfigRejected, NotFound, SecretsUnavailable
from shared.runtime import Runtime

log = logging.getLogger(__name__)


def create_api(rt: Runtime) -> FastAPI:
    """The config service's HTTP API bound to ``rt``."""
    api = FastAPI(title="Mailroom config service", version="0.1.0")
    api.state.runtime = rt
    for module in (
        health,
        accounts,
        account_health,
        outgoing,
        outgoing_test,
        settings,
        failed,
        archive,
        transfer,
    ):
        api.include_router(module.router)

    @api.exception_handler(ConfigRejected)
    async def rejected(_: Request, exc: ConfigRejected) -> JSONResponse:
        return JSONResponse({"error": "config_rejected", "detail": str(exc)}, status_code=422)

    @api.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"error": "not_found", "detail": str(exc)}, status_code=404)

    @api.exception_handler(SecretsUnavailable)
    async def no_key(_: Request, exc: SecretsUnavailable) -> JSONResponse:
        return JSONResponse({"error": "secrets_unavailable", "detail": str(exc)}, status_code=409)

    @api.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> JSONResponse:
        log.error("API request failed: %s", type(exc).__name__)
        return JSONResponse({"error": "internal", "detail": "internal error"}, status_code=500)

    return api
