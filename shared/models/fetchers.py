"""Documents of the fetcher fleet: instance heartbeats and per-account leases."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from shared.models.messages import utcnow


class _Doc(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class FetcherCounts(_Doc):
    """What one fetcher instance did since it started (also exported to Prometheus)."""

    mails_fetched: int = 0
    fetch_errors: int = 0
    lease_changes: int = 0
    fenced: int = 0
    """Destructive steps refused because the lease was lost meanwhile."""


class FetcherInstance(_Doc):
    """A fetcher instance's heartbeat (collection ``fetchers``), rewritten every tick."""

    id: str = Field(alias="_id")
    host: str
    pid: int
    started_at: datetime = Field(default_factory=utcnow)
    heartbeat_at: datetime = Field(default_factory=utcnow)
    accounts: list[str] = Field(default_factory=list)
    """The accounts whose lease it holds and whose fetch task runs."""
    last_fetch: dict[str, datetime] = Field(default_factory=dict)
    """When each held account's last fetch round completed."""
    counts: FetcherCounts = FetcherCounts()


class Lease(_Doc):
    """Who fetches an account (collection ``leases``, one document per account, never deleted
    so that the fencing token only grows)."""

    account: str = Field(alias="_id")
    owner: str | None = None
    session: str | None = None
    """Random per process: a restarted instance with the same id is another holder."""
    token: int = 0
    """Fencing token: incremented each time a different holder takes the lease."""
    expires_at: datetime
    acquired_at: datetime | None = None
