"""What every service answers over HTTP for its operators: liveness, readiness and metrics.

``/healthz`` says the process answers (a liveness probe restarts it otherwise); ``/readyz``
says it can do its work — its services have started, the broker connection is up and
MongoDB answers a ping — and otherwise answers 503 with the reason; ``/metrics`` is the
Prometheus text of the process. None of them needs a token: they reveal no configuration,
only counts and component states.
The config service serves the same three through its FastAPI app; the other services serve
:func:`probes_app`.
"""

from __future__ import annotations

import asyncio
from typing import Final, Literal

from faststream.rabbit import RabbitBroker
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shared import metrics
from shared.errors import Transient
from shared.runtime import Runtime
from shared.store import Store

CHECK_TIMEOUT_S: Final = 3.0
"""Each readiness check gives up after this long: probes time out, and a hung MongoDB is
as unready as a stopped one."""

Component = Literal["ok", "unavailable"]


class Readiness(BaseModel):
    """The answer of ``/readyz``; ``reason`` says what is missing when not ready."""

    status: Literal["ready", "not ready"]
    broker: Component
    mongodb: Component
    reason: str | None = None

    @property
    def ready(self) -> bool:
        """Both components answer."""
        return self.status == "ready"


async def check_readiness(
    *, store: Store | None, broker: RabbitBroker, started: bool = True
) -> Readiness:
    """Ping MongoDB and check the broker connection, each within :data:`CHECK_TIMEOUT_S`;
    not ready either until the process's services have ``started``.

    Without that, a client that waited for ``/readyz`` could write a setting while the
    topology was still being declared (on a new RabbitMQ, before the ``config`` exchange
    exists) and get a 500 for it.
    """
    reasons = [] if started else ["the services are still starting"]
    mongodb: Component = "ok"
    try:
        if store is None:
            raise Transient("MongoDB not connected yet")
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await store.ping()
    except (Transient, TimeoutError) as exc:
        mongodb = "unavailable"
        reasons.append(str(exc) or "MongoDB did not answer the ping in time")
    broker_state: Component = "ok"
    if not await broker.ping(timeout=CHECK_TIMEOUT_S):
        broker_state = "unavailable"
        reasons.append("RabbitMQ connection is down")
    return Readiness(
        status="not ready" if reasons else "ready",
        broker=broker_state,
        mongodb=mongodb,
        reason="; ".join(reasons) or None,
    )


async def runtime_readiness(rt: Runtime) -> Readiness:
    """Readiness of the connections of ``rt``."""
    try:
        store: Store | None = rt.store
    except RuntimeError:
        store = None
    return await check_readiness(store=store, broker=rt.broker, started=rt.started)


async def metrics_text(rt: Runtime) -> bytes:
    """The process's metrics, with queue depths read from the broker just now."""
    await metrics.refresh_queue_depths(rt.broker)
    return metrics.render()


def probes_app(rt: Runtime) -> Starlette:
    """The HTTP app of a service without an API of its own: the three endpoints."""

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        readiness = await runtime_readiness(rt)
        return JSONResponse(readiness.model_dump(), status_code=200 if readiness.ready else 503)

    async def prometheus(_: Request) -> Response:
        return Response(await metrics_text(rt), media_type=metrics.CONTENT_TYPE)

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", prometheus, methods=["GET"]),
        ]
    )
