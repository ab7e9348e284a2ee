"""The sender service's parts."""

from __future__ import annotations

from services.sender.handlers import build_router
from services.sender.smtp import AiosmtplibTransport
from shared.runtime import Runtime
from shared.service import Service


def build(rt: Runtime) -> Service:
    """The sender: one subscriber on ``sender.outbound`` and one reused SMTP connection."""
    transport = AiosmtplibTransport()
    return Service(name="sender", routers=[build_router(rt, transport)], stop=transport.close)
