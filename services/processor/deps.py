"""What the processor's handler and domain step use of a running service, and nothing else.

A :class:`~shared.runtime.Runtime` provides all three; a test provides just these (a store
on its own database, a broker under ``TestRabbitBroker``, a configuration it built).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from shared.models.config import SystemConfig
from shared.store import Store

if TYPE_CHECKING:
    from faststream.rabbit import RabbitBroker


class ProcessorDeps(Protocol):
    """The store's repositories, the publisher and the current configuration."""

    @property
    def store(self) -> Store:
        """The MongoDB repositories (open by the time a mail arrives)."""
        ...

    @property
    def broker(self) -> RabbitBroker:
        """Publishes events, outgoing mail, retries and dead letters."""
        ...

    @property
    def config(self) -> SystemConfig:
        """The configuration now (a new snapshot after every change)."""
        ...
