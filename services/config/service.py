"""The config service's parts: the HTTP API and the failed-mail desk's consumers."""

from __future__ import annotations

from services.config import desk
from services.config.api.main import create_api
from services.config.credential_watch import CredentialWatch
from shared.runtime import Runtime
from shared.service import Service


def build(rt: Runtime) -> Service:
    """The config service, watching the OAuth 2.0 credentials beside its API."""
    watch = CredentialWatch(rt)
    return Service(
        name="config",
        routers=[desk.build_router(rt)],
        start=watch.start,
        stop=watch.stop,
        asgi=create_api(rt),
        http_port=rt.settings.api_port,
    )
