"""What the fetcher's fleet, supervisor and rounds use of a running service, and nothing else:
the repositories they read and write, the publisher, the current configuration, and how a
mailbox signs in with a named credential.

They take a :class:`FetcherDeps`, not the whole ``Runtime``, so a round runs in a test with
any store and broker. The repositories and the configuration are reached through calls: the
fleet is built before MongoDB is open, and a configuration broadcast replaces the
configuration while the service runs, so every call gives the current one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from faststream.rabbit import RabbitBroker

from shared.credential_health import credential_refused
from shared.models.config import SystemConfig
from shared.runtime import Runtime
from shared.store import FetcherRepo, FetchStateRepo, LeaseRepo, RawEmailRepo, Store
from shared.store.account_health import AccountHealthRepo
from shared.store.credentials import CredentialRepo


@dataclass(frozen=True)
class FetcherRepos:
    """The store as the fetcher uses it."""

    raw_emails: RawEmailRepo
    fetch_state: FetchStateRepo
    account_health: AccountHealthRepo
    leases: LeaseRepo
    fetchers: FetcherRepo

    @classmethod
    def of(cls, store: Store) -> FetcherRepos:
        """The fetcher's view of ``store``."""
        return cls(
            raw_emails=store.raw_emails,
            fetch_state=store.fetch_state,
            account_health=store.account_health,
            leases=store.leases,
            fetchers=store.fetchers,
        )


@dataclass(frozen=True)
class FetcherDeps:
    """Everything the fetcher's fleet, supervisor and rounds may touch."""

    repos: Callable[[], FetcherRepos]
    """The repositories of the open store (called when used: it opens after the build)."""
    publisher: RabbitBroker
    """Announces fetched mail (``mail.received``) and failing accounts."""
    config: Callable[[], SystemConfig]
    """The current configuration (the broadcast replaces it; read it where it is used)."""
    credentials: Callable[[], CredentialRepo]
    """Reads the named OAuth 2.0 credentials a mailbox signs in with."""
    on_refused: Callable[[str], Awaitable[None]]
    """Hears of a named credential whose issuer refused a token (alerts at once)."""

    @classmethod
    def of(cls, rt: Runtime) -> FetcherDeps:
        """The fetcher's dependencies out of a process's runtime."""
        return cls(
            repos=lambda: FetcherRepos.of(rt.store),
            publisher=rt.broker,
            config=lambda: rt.config,
            credentials=lambda: rt.credentials,
            on_refused=lambda name: credential_refused(rt, name),
        )
