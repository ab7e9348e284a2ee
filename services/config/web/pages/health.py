"""Health: the services, queues, failed-mail desk and expiring credentials at a glance."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.config.api.deps import RuntimeDep
from services.config.overview import overview
from services.config.web.auth import Viewing
from services.config.web.templates import CONSOLE, render

router = APIRouter(prefix=CONSOLE, include_in_schema=False)


@router.get("/health")
async def health_page(request: Request, rt: RuntimeDep, visitor: Viewing) -> HTMLResponse:
    """The Health page."""
    return render(request, "health.html", visitor, title="Health", view=await overview(rt))
