"""The fetcher fleet as operators see it: instances with heartbeat age and the accounts each
holds, and per account its owner and last fetch (read from the ``fetchers`` and ``leases``
collections; the config service changes neither).

"Last fetch" is when the account's last fetch round completed, as its owner reported in its
heartbeat; an account never fetched (or whose owner shut down before another fetched it)
shows none.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from services.config.api.schemas import AccountPublic
from shared.models.fetchers import FetcherCounts, FetcherInstance
from shared.models.messages import utcnow
from shared.runtime import Runtime


class FetcherStatus(BaseModel):
    """One fetcher instance: alive while its heartbeat is younger than the lease time."""

    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    heartbeat_age_seconds: float
    alive: bool
    accounts: list[str]
    counts: FetcherCounts


class AccountOwnership(BaseModel):
    """Who fetches an account and when it last did."""

    account: str
    enabled: bool
    owner: str | None
    """The instance holding a valid lease; None while nobody does (disabled, handover)."""
    lease_token: int | None
    lease_expires_in_seconds: float | None
    last_fetch_at: datetime | None


class AccountListed(AccountPublic):
    """An account in a listing: its settings, its owner and its last fetch."""

    owner: str | None = None
    last_fetch_at: datetime | None = None


def _last_fetches(instances: list[FetcherInstance]) -> dict[str, datetime]:
    latest: dict[str, datetime] = {}
    for instance in instances:
        for account, at in instance.last_fetch.items():
            latest[account] = max(at, latest.get(account, at))
    return latest


async def fetcher_status(rt: Runtime) -> list[FetcherStatus]:
    """Every instance with a heartbeat document (stale ones of killed instances too)."""
    now = utcnow()
    lease = rt.config.settings.fetcher_lease_seconds
    return [
        FetcherStatus(
            id=i.id,
            host=i.host,
            pid=i.pid,
            started_at=i.started_at,
            heartbeat_at=i.heartbeat_at,
            heartbeat_age_seconds=round((now - i.heartbeat_at).total_seconds(), 1),
            alive=(now - i.heartbeat_at).total_seconds() < lease,
            accounts=i.accounts,
            counts=i.counts,
        )
        for i in await rt.store.fetchers.all()
    ]


async def account_ownership(rt: Runtime) -> list[AccountOwnership]:
    """Owner, lease and last fetch of every configured account, by name."""
    now = utcnow()
    leases = {lease.account: lease for lease in await rt.store.leases.all()}
    last = _last_fetches(await rt.store.fetchers.all())
    rows = []
    for name, account in sorted(rt.config.accounts.items()):
        lease = leases.get(name)
        valid = lease is not None and lease.owner is not None and lease.expires_at > now
        rows.append(
            AccountOwnership(
                account=name,
                enabled=account.enabled,
                owner=lease.owner if valid and lease else None,
                lease_token=lease.token if valid and lease else None,
                lease_expires_in_seconds=(
                    round((lease.expires_at - now).total_seconds(), 1) if valid and lease else None
                ),
                last_fetch_at=last.get(name),
            )
        )
    return rows


async def accounts_listed(rt: Runtime) -> list[AccountListed]:
    """Every account's public settings with its owner and last fetch."""
    ownership = {row.account: row for row in await account_ownership(rt)}
    return [
        AccountListed.of(account).model_copy(
            update={"owner": ownership[name].owner, "last_fetch_at": ownership[name].last_fetch_at}
        )
        for name, account in rt.config.accounts.items()
    ]
