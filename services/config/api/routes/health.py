"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from services.config.api.deps import RuntimeDep
from shared.errors import Transient

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(rt: RuntimeDep, response: Response) -> dict[str, str]:
    """MongoDB and the broker are reachable."""
    checks = {"mongodb": "ok", "broker": "ok"}
    try:
        await rt.store.ping()
    except (Transient, RuntimeError):
        checks["mongodb"] = "unavailable"
    if not await rt.broker.ping(timeout=2.0):
        checks["broker"] = "unavailable"
    if any(v != "ok" for v in checks.values()):
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return checks
