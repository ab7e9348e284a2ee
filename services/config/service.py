"""The config service's parts: the HTTP API and the failed-mail desk's consumers."""

from __future__ import annotations

from services.config import desk
from services.config.api.main import create_api
from shared.runtime import Runtime
from shared.service import Service


def build(rt: Runtime) -> Service:
    """The config service."""
    return Service(
        name="config",
        routers=[desk.build_router(rt)],
        asgi=create_api(rt),
        http_port=rt.settings.api_port,
    )
