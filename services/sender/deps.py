"""What the sender's handlers use, and nothing else: the repositories they read and write,
the publisher, the current configuration and the sender's own settings.

Handlers take a :class:`SenderDeps`, not the whole ``Runtime``, so their logic runs in tests
with any store and broker (FastStream's ``TestRabbitBroker`` where dead-lettering is not
involved). The repositories are reached through ``repos()``: the router is built before
MongoDB is open, and the service opens it before the first message arrives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from faststream.rabbit import RabbitBroker
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.models.config import SystemConfig
from shared.runtime import Runtime
from shared.store import Store
from shared.store.cases import CaseRepo
from shared.store.outbox import OutboxBatcher, OutboxRepo
from shared.store.test_archive import TestArchiveRepo


class SenderSettings(BaseSettings):
    """The sender process's own settings: ``MAILROOM_SENDER_*``."""

    model_config = SettingsConfigDict(
        env_prefix="MAILROOM_SENDER_", env_ignore_empty=True, extra="ignore"
    )

    prefetch: int = Field(default=32, ge=1, le=1000)
    """Messages the sender holds unacknowledged; each is delivered in its own task, so this
    caps the mails in flight (building, waiting for a connection, on the wire, recording).
    At least the SMTP ``concurrency`` (at most 32) so that every connection is kept busy."""
    batch_size: int = Field(default=64, ge=1, le=1000)
    """Outbox writes (claims, outcomes) at most in one bulk write. Each mail in
    flight has at most one write waiting, so the default (twice the prefetch) never splits
    what is waiting; a lower value bounds the size of one write to MongoDB."""


@dataclass(frozen=True)
class SenderRepos:
    """The store as the sender uses it."""

    outbox: OutboxBatcher
    """Claims and outcomes, group-committed."""
    outbox_repo: OutboxRepo
    """The outbox's other writes (next attempt, give up): rare, written at once."""
    cases: CaseRepo
    test_archive: TestArchiveRepo

    @classmethod
    def of(cls, store: Store, settings: SenderSettings) -> SenderRepos:
        """The sender's view of ``store``."""
        return cls(
            outbox=OutboxBatcher(store.outbox, settings.batch_size),
            outbox_repo=store.outbox,
            cases=store.cases,
            test_archive=store.test_archive,
        )


@dataclass(frozen=True)
class SenderDeps:
    """Everything a sender handler may touch."""

    repos: Callable[[], SenderRepos]
    publisher: RabbitBroker
    config: Callable[[], SystemConfig]
    """The current configuration (the broadcast replaces it; a delivery takes one snapshot)."""
    settings: SenderSettings

    @classmethod
    def of(cls, rt: Runtime, settings: SenderSettings | None = None) -> SenderDeps:
        """The sender's dependencies out of a process's runtime."""
        settings = settings or SenderSettings()
        made: list[tuple[Store, SenderRepos]] = []

        def repos() -> SenderRepos:
            store = rt.store  # one view per open store (a test may reopen it)
            if not made or made[0][0] is not store:
                made[:] = [(store, SenderRepos.of(store, settings))]
            return made[0][1]

        return cls(repos=repos, publisher=rt.broker, config=lambda: rt.config, settings=settings)
