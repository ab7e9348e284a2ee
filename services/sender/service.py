"""The sender service's parts."""

from __future__ import annotations

from services.sender.deps import SenderDeps
from services.sender.handlers import build_router
from services.sender.notifications import build_notification_router
from services.sender.registry import AdapterDeps, Transports
from shared.credential_health import credential_refused
from shared.runtime import Runtime
from shared.service import Service


def build(rt: Runtime) -> Service:
    """The sender: subscribers on ``sender.outbound`` and ``sender.account_failing``, and
    the outgoing transports (SMTP: a pool of reused connections per server, ``outgoing/smtp``
    ``concurrency``)."""
    transport = Transports(
        AdapterDeps(
            credentials=lambda: rt.credentials,
            on_refused=lambda name: credential_refused(rt, name),
        )
    )
    deps = SenderDeps.of(rt)
    routers = [build_router(deps, transport), build_notification_router(deps)]
    return Service(name="sender", routers=routers, stop=transport.close, http_port=8028)
