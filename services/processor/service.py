"""The processor service's parts."""

from __future__ import annotations

from services.processor.handlers import build_router
from services.processor.settings import ProcessorProcessSettings
from shared.runtime import Runtime
from shared.service import Service


def build(rt: Runtime) -> Service:
    """The processor: one subscriber on ``processor.inbound``, fed what it uses of ``rt``."""
    return Service(
        name="processor", routers=[build_router(rt, ProcessorProcessSettings())], http_port=8027
    )
