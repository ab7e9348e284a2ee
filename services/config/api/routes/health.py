"""Liveness, readiness and metrics of the config service (the same answers as every
service's probes, see ``shared.probes``); none of them needs a token. The credentials'
health detail does (it names accounts' credentials and their issuers' errors)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from fastapi.responses import PlainTextResponse

from services.config.api.deps import RuntimeDep, Viewer
from shared import metrics
from shared.credential_health import CredentialReport, check_credentials
from shared.probes import Readiness, metrics_text, runtime_readiness

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={status.HTTP_503_SERVICE_UNAVAILABLE: {"model": Readiness}},
)
async def readyz(rt: RuntimeDep, response: Response) -> Readiness:
    """MongoDB answers a ping and the broker connection is up; 503 with the reason otherwise."""
    readiness = await runtime_readiness(rt)
    if not readiness.ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return readiness


@router.get("/healthz/credentials")
async def credentials_health(rt: RuntimeDep, _: Viewer) -> list[CredentialReport]:
    """Each OAuth 2.0 credential's health: status (ok, warning, failing), last login, last
    error, token expiry, refresh-token age, client-secret expiry and what is wrong."""
    return await check_credentials(rt, alert=False)


@router.get("/metrics", response_class=PlainTextResponse)
async def prometheus(rt: RuntimeDep) -> Response:
    """Prometheus metrics of this process (all services' in ``mailroom run all``)."""
    return Response(await metrics_text(rt), media_type=metrics.CONTENT_TYPE)
