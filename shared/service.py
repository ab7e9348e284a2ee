"""How services are assembled and run: alone, all in one process, or inside a test."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aio_pika
from aio_pika.exceptions import AMQPConnectionError
from faststream.asgi import AsgiFastStream
from faststream.rabbit import RabbitRouter
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.broker import declare_topology
from shared.errors import Transient
from shared.logs import (
    UVICORN_LOG_CONFIG,
    CorrelationMiddleware,
    configure_logging,
    log_context,
    service_middleware,
)
from shared.probes import probes_app
from shared.retry import RetrySettings, until_available
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
    """An HTTP app served beside the broker (the config service's API); a service without
    one serves the probes (``/healthz``, ``/readyz``, ``/metrics``)."""
    http_port: int = 8025
    """Its HTTP port when nothing else is set; each service has its own, so several run on
    one host without colliding."""


class HttpSettings(BaseSettings):
    """Where a service process listens for HTTP: ``MAILROOM_HTTP_HOST``/``_PORT``.

    Unset, the host is ``MAILROOM_API_HOST`` and the port the service's own default
    (config 8025, fetcher 8026, processor 8027, sender 8028; ``run all`` uses the config
    service's). ``--host``/``--port`` on the command line win over both.
    """

    model_config = SettingsConfigDict(
        env_prefix="MAILROOM_HTTP_", env_ignore_empty=True, extra="ignore"
    )

    host: str | None = None
    port: int | None = Field(default=None, ge=0, le=65535)
    """0: any free port (tests running many processes side by side)."""


ServiceBuilder = Callable[[Runtime], Service]


class Stack:
    """Services sharing one Runtime (one broker connection, one MongoDB client)."""

    def __init__(
        self, builders: Sequence[ServiceBuilder], settings: SharedSettings | None = None
    ) -> None:
        self.rt = Runtime(settings or SharedSettings())
        self.services = [build(self.rt) for build in builders]
        served = next((s for s in self.services if s.asgi is not None), self.services[0])
        # The API of the service that has one serves the probes too; otherwise the probes alone.
        self.asgi: ASGIApp = served.asgi or probes_app(self.rt)
        http = HttpSettings()
        self.http_host = http.host or self.rt.settings.api_host
        self.http_port = served.http_port if http.port is None else http.port
        names = "+".join(s.name for s in self.services)
        # Before uvicorn or the broker log anything: one format for every record.
        configure_logging(
            self.rt.settings.log_level, json_lines=self.rt.settings.log_json, service=names
        )
        self.http_service = served.name
        self.rt.broker.add_middleware(CorrelationMiddleware)
        self.rt.broker.include_router(self.rt.config_router(names))
        for service in self.services:
            for router in service.routers:
                self.rt.broker.include_router(
                    router, middlewares=[service_middleware(service.name)]
                )

    async def before_broker(self) -> None:
        """MongoDB and RabbitMQ, before any subscriber may receive a message.

        A dependency that is not there yet is waited for with the start-up backoff
        (``shared.retry``, ``MAILROOM_RETRY_STARTUP__*``), one log line per try with its
        address, instead of the process dying with a traceback.
        """
        policy = RetrySettings().startup
        settings = self.rt.settings
        await until_available(
            "MongoDB", _address(settings.mongodb_url), self.rt.start_store, policy=policy
        )
        await until_available(
            "RabbitMQ",
            _address(settings.broker_url),
            lambda: _reach_broker(settings),
            policy=policy,
        )

    async def after_broker(self) -> None:
        """Topology, the configuration read again, then each service's own start hook.

        The configuration was first read before the broker's subscribers existed: a change
        broadcast in between reached no queue of this instance (a fetcher started beside a
        new account never saw it). Read now, with the config queue bound, nothing falls in
        between: a later change arrives by broadcast.
        """
        await declare_topology(self.rt.broker)
        await self.rt.reload_config()
        for service in self.services:
            if service.start is not None:
                # Tasks it starts (the fetcher's per-account loops) log under its name.
                with log_context(service=service.name):
                    await service.start()
        self.rt.started = True

    async def before_broker_stop(self) -> None:
        """Each service's stop hook, in reverse order."""
        self.rt.started = False
        for service in reversed(self.services):
            if service.stop is not None:
                with log_context(service=service.name):
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

    def app(self) -> AsgiFastStream:
        """A FastStream ASGI app running this stack and serving its HTTP app."""
        hooks: dict[str, list[Hook]] = {
            "on_startup": [self.before_broker],
            "after_startup": [self.after_broker],
            "on_shutdown": [self.before_broker_stop],
            "after_shutdown": [self.rt.close],
        }
        return _HttpFastStream(
            self.rt.broker,
            http=self.asgi,
            http_service=self.http_service,
            listen={"host": self.http_host, "port": self.http_port},
            **hooks,
        )


def _address(url: SecretStr) -> str:
    """host:port of a server URL, without credentials (safe to log)."""
    parts = urlsplit(url.get_secret_value())
    return parts.netloc.rpartition("@")[2] or url.get_secret_value().partition("://")[0]


async def _reach_broker(settings: SharedSettings) -> None:
    """Open and close one AMQP connection; Transient when the broker does not answer."""
    try:
        connection = await aio_pika.connect(settings.broker_url.get_secret_value(), timeout=10)
    except (TimeoutError, OSError, AMQPConnectionError) as exc:
        raise Transient(type(exc).__name__) from None
    await connection.close()


class _HttpFastStream(AsgiFastStream):
    """A FastStream ASGI app that hands every HTTP request to one inner app.

    AsgiFastStream routes by exact path only; the config API has many paths, so it gets all
    HTTP traffic while FastStream keeps the lifespan (broker start and stop).
    """

    def __init__(
        self,
        *args: Any,
        http: ASGIApp,
        http_service: str,
        listen: dict[str, str | int],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._http = http
        self._http_service = http_service
        self._listen = listen

    async def run(
        self, log_level: int = logging.INFO, run_extra_options: dict[str, Any] | None = None
    ) -> None:
        """Serve on the configured address unless the command line names another; uvicorn
        logs through our handler (no logging config of its own)."""
        options = {"log_config": UVICORN_LOG_CONFIG, **self._listen, **(run_extra_options or {})}
        await super().run(log_level, options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch HTTP to the inner app, the rest (lifespan) to FastStream."""
        if scope["type"] in {"http", "websocket"}:
            with log_context(service=self._http_service):
                await self._http(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def lazy_app(*builders: ServiceBuilder) -> Callable[[], AsgiFastStream]:
    """A cached factory, so ``app.py`` can expose ``app`` without reading settings at import."""
    return functools.cache(lambda: Stack(builders).app())
