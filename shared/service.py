"""How a service is assembled into a runnable FastStream app (alone or all in one)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from faststream import FastStream
from faststream.asgi import AsgiFastStream
from faststream.rabbit import RabbitRouter
from starlette.types import ASGIApp

from shared.broker import declare_topology
from shared.logs import configure_logging
from shared.runtime import Runtime
from shared.settings import SharedSettings

Hook = Callable[[], Awaitable[None]]


@dataclass
class Service:
    """One service's parts: its subscribers, and what runs beside them."""

    name: str
    routers: list[RabbitRouter] = field(default_factory=list)
    start: Hook | None = None
    """Runs after the broker is connected (e.g. the fetcher's supervisor)."""
    stop: Hook | None = None
    """Runs before the broker disconnects."""
    asgi: ASGIApp | None = None
    """An HTTP app served beside the broker (the config service's API)."""


ServiceBuilder = Callable[[Runtime], Service]


def build_app(
    builders: Sequence[ServiceBuilder], settings: SharedSettings | None = None
) -> FastStream | AsgiFastStream:
    """One FastStream app running the given services on one broker connection."""
    rt = Runtime(settings or SharedSettings())
    services = [build(rt) for build in builders]
    rt.broker.include_router(rt.config_router("+".join(s.name for s in services)))
    for service in services:
        for router in service.routers:
            rt.broker.include_router(router)

    async def on_startup() -> None:
        configure_logging(rt.settings.log_level, json_lines=rt.settings.log_json)
        await rt.start_store()

    async def after_startup() -> None:
        await declare_topology(rt.broker)
        for service in services:
            if service.start is not None:
                await service.start()

    async def on_shutdown() -> None:
        for service in reversed(services):
            if service.stop is not None:
                await service.stop()

    async def after_shutdown() -> None:
        await rt.close()

    hooks = {
        "on_startup": [on_startup],
        "after_startup": [after_startup],
        "on_shutdown": [on_shutdown],
        "after_shutdown": [after_shutdown],
    }
    asgi = [("/", s.asgi) for s in services if s.asgi is not None]
    if asgi:
        return AsgiFastStream(rt.broker, asgi_routes=asgi[:1], **hooks)  # type: ignore[arg-type]
    return FastStream(rt.broker, **hooks)  # type: ignore[arg-type]


def lazy_app(*builders: ServiceBuilder) -> Callable[[], FastStream | AsgiFastStream]:
    """A cached factory, so ``app.py`` can expose ``app`` without reading settings at import."""
    return functools.cache(lambda: build_app(builders))
