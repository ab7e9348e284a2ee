"""How services are assembled and run: alone, all in one process, or inside a test."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from faststream import FastStream
from faststream.asgi import AsgiFastStream
from faststream.rabbit import RabbitRouter
from starlette.types import ASGIApp, Receive, Scope, Send

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


class Stack:
    """Services sharing one Runtime (one broker connection, one MongoDB client)."""

    def __init__(
        self, builders: Sequence[ServiceBuilder], settings: SharedSettings | None = None
    ) -> None:
        self.rt = Runtime(settings or SharedSettings())
        self.services = [build(self.rt) for build in builders]
        names = "+".join(s.name for s in self.services)
        self.rt.broker.include_router(self.rt.config_router(names))
        for service in self.services:
            for router in service.routers:
                self.rt.broker.include_router(router)

    @property
    def asgi(self) -> ASGIApp | None:
        """The HTTP app of the stack, if a service has one."""
        return next((s.asgi for s in self.services if s.asgi is not None), None)

    async def before_broker(self) -> None:
        """Logging and MongoDB, before any subscriber may receive a message."""
        configure_logging(self.rt.settings.log_level, json_lines=self.rt.settings.log_json)
        await self.rt.start_store()

    async def after_broker(self) -> None:
        """Topology, then each service's own start hook."""
        await declare_topology(self.rt.broker)
        for service in self.services:
            if service.start is not None:
                await service.start()

    async def before_broker_stop(self) -> None:
        """Each service's stop hook, in reverse order."""
        for service in reversed(self.services):
            if service.stop is not None:
                await service.stop()

    async def start(self) -> None:
        """Start everything (for tests and embedding; apps use the hooks)."""
        await self.before_broker()
        await self.rt.broker.start()
        await self.after_broker()

    async def stop(self) -> None:
        """Stop everything started by :meth:`start`."""
        await self.before_broker_stop()
        await self.rt.broker.stop()
        await self.rt.close()

    def app(self) -> FastStream | AsgiFastStream:
        """A FastStream app (ASGI when a service serves HTTP) running this stack."""
        hooks: dict[str, list[Hook]] = {
            "on_startup": [self.before_broker],
            "after_startup": [self.after_broker],
            "on_shutdown": [self.before_broker_stop],
            "after_shutdown": [self.rt.close],
        }
        asgi = self.asgi
        if asgi is not None:
            return _HttpFastStream(self.rt.broker, http=asgi, **hooks)
        return FastStream(self.rt.broker, **hooks)  # type: ignore[arg-type]


class _HttpFastStream(AsgiFastStream):
    """A FastStream ASGI app that hands every HTTP request to one inner app.

    AsgiFastStream routes by exact path only; the config API has many paths, so it gets all
    HTTP traffic while FastStream keeps the lifespan (broker start and stop).
    """

    def __init__(self, *args: Any, http: ASGIApp, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._http = http

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch HTTP to the inner app, the rest (lifespan) to FastStream."""
        if scope["type"] in {"http", "websocket"}:
            await self._http(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def lazy_app(*builders: ServiceBuilder) -> Callable[[], FastStream | AsgiFastStream]:
    """A cached factory, so ``app.py`` can expose ``app`` without reading settings at import."""
    return functools.cache(lambda: Stack(builders).app())
