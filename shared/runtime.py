"""What a running service holds: settings, store, broker and the current configuration.

FastStream (and with it the broker and the topology) is imported when the broker is first
used: a CLI command that only reads MongoDB does not pay its start-up time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from shared.config_views import build_config
from shared.models.config import SystemConfig
from shared.models.messages import ConfigChanged
from shared.redact import REDACTOR
from shared.secrets import SecretBox
from shared.settings import SharedSettings
from shared.store import Store, open_store
from shared.store.credentials import CredentialRepo

if TYPE_CHECKING:
    from faststream.rabbit import RabbitBroker, RabbitRouter

log = logging.getLogger(__name__)

ConfigListener = Callable[[SystemConfig], Awaitable[None]]


class Runtime:
    """One process's connections and configuration; services share it in ``run all``."""

    def __init__(self, settings: SharedSettings, broker: RabbitBroker | None = None) -> None:
        self.settings = settings
        self.box = SecretBox(settings.secret_key)
        self._broker = broker
        self.config = SystemConfig()
        self._store: Store | None = None
        self.started = False
        """Every service of this process has started (readiness waits for it: FastStream
        serves HTTP while it still starts the broker's subscribers and the services)."""
        self._listeners: list[ConfigListener] = []
        self._reload_lock = asyncio.Lock()
        REDACTOR.register(
            settings.secret_key.get_secret_value() if settings.secret_key else None,
            settings.api_token.get_secret_value() if settings.api_token else None,
            settings.operator_token.get_secret_value() if settings.operator_token else None,
            settings.broker_url.get_secret_value()
            .partition("://")[2]
            .partition("@")[0]
            .partition(":")[2],
        )

    @property
    def broker(self) -> RabbitBroker:
        """The broker (built on first use; connected by :meth:`start_broker` or the app)."""
        if self._broker is None:
            from shared.broker import build_broker

            self._broker = build_broker(self.settings.broker_url.get_secret_value())
        return self._broker

    @property
    def store(self) -> Store:
        """The MongoDB store (after :meth:`start_store`)."""
        if self._store is None:
            raise RuntimeError("store not open: call start_store() first")
        return self._store

    @property
    def credentials(self) -> CredentialRepo:
        """The named OAuth 2.0 credentials, sealed with this runtime's secret key."""
        return CredentialRepo(self.store.db, self.box)

    async def start_store(self, *, timeout_ms: int = 10_000) -> None:
        """Open MongoDB (waiting up to ``timeout_ms`` for it to answer: the CLI waits less
        than a service) and load the configuration (idempotent)."""
        if self._store is None:
            self._store = await open_store(
                self.settings.mongodb_url.get_secret_value(),
                self.settings.database,
                timeout_ms=timeout_ms,
            )
            await self.reload_config()

    async def start_broker(self) -> None:
        """Connect the broker and declare the topology (for processes that only publish)."""
        from shared.broker import declare_topology

        await self.broker.connect()
        await declare_topology(self.broker)

    async def close(self) -> None:
        """Close MongoDB (the broker belongs to the FastStream app that runs it)."""
        if self._store is not None:
            await self._store.close()
            self._store = None

    def on_config(self, listener: ConfigListener) -> None:
        """Call ``listener`` with every newly loaded configuration."""
        self._listeners.append(listener)

    async def reload_config(self) -> SystemConfig:
        """Read every property, rebuild the typed views and notify listeners."""
        async with self._reload_lock:
            version = await self.store.properties.version()
            props = await self.store.properties.all()
            config = build_config(props, box=self.box, version=version)
            self._register_secrets(config)
            self.config = config
        for listener in self._listeners:
            await listener(config)
        return config

    async def on_config_changed(self, change: ConfigChanged) -> None:
        """React to a broadcast: reload everything unless this version is already loaded.

        Every broadcast carries the global version after its change. One more than the loaded
        version is the next change; more than one more means changes were not seen here (a
        broadcast missed while this instance's queue did not exist, or one change of several
        properties, which bumps the version once per property). Either way the whole
        configuration is read again, so a gap heals with the next broadcast; the services also
        read it all at start.
        """
        loaded = self.config.version
        if change.version <= loaded:
            return
        if change.version > loaded + 1:
            log.info(
                "configuration version jumped: reloading everything",
                extra={"loaded_version": loaded, "version": change.version},
            )
        else:
            log.info(
                "configuration changed",
                extra={"version": change.version, "property": f"{change.module}/{change.key}"},
            )
        await self.reload_config()

    def config_router(self, service: str) -> RabbitRouter:
        """A router with this instance's subscriber to the ``config`` broadcast."""
        from faststream.rabbit import RabbitRouter

        from shared.topology import CONFIG_EXCHANGE, config_queue

        router = RabbitRouter()

        @router.subscriber(
            config_queue(service, self.settings.instance_id),
            CONFIG_EXCHANGE,
            title=f"{service}.config",
        )
        async def config_changed(change: ConfigChanged) -> None:
            await self.on_config_changed(change)

        return router

    @staticmethod
    def _register_secrets(config: SystemConfig) -> None:
        for account in config.accounts.values():
            if account.password:
                REDACTOR.register(account.password.get_secret_value())
            if account.client_secret:
                REDACTOR.register(account.client_secret.get_secret_value())
            if account.outgoing_password:
                REDACTOR.register(account.outgoing_password.get_secret_value())
        if config.outgoing and config.outgoing.password:
            REDACTOR.register(config.outgoing.password.get_secret_value())
        if config.outgoing and config.outgoing.client_secret:
            REDACTOR.register(config.outgoing.client_secret.get_secret_value())
