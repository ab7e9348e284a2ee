"""The whole system at a glance, for the console's Health page: fetcher instances and their
accounts, the queues with their depth and consumers (the processor and sender instances),
the failed-mail desk's size and the credentials that expire soonest."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from services.config.account_health import read_health
from services.config.fetchers import FetcherStatus, fetcher_status
from shared.metrics import queue_depths
from shared.runtime import Runtime


class QueueOverview(BaseModel):
    """One queue: ready messages and consumers; None when the broker did not say."""

    queue: str
    messages: int | None
    consumers: int | None


class CredentialExpiry(BaseModel):
    """A credential that expires: which account, what, and when."""

    account: str
    credential: str
    expires_at: datetime


class AccountProblem(BaseModel):
    """An account whose last fetch rounds failed."""

    account: str
    failures: int
    last_error: str | None
    last_error_at: datetime | None


class Overview(BaseModel):
    """What the Health page shows."""

    fetchers: list[FetcherStatus]
    queues: list[QueueOverview]
    broker_reachable: bool
    desk_failed: int
    credentials: list[CredentialExpiry]
    failing_accounts: list[AccountProblem]


async def overview(rt: Runtime) -> Overview:
    """Read every part of the overview (a broker that does not answer leaves the queues
    unknown; the page says so instead of failing)."""
    depths = await queue_depths(rt.broker)
    queues = [
        QueueOverview(
            queue=name,
            messages=None if state is None else state.messages,
            consumers=None if state is None else state.consumers,
        )
        for name, state in depths.items()
    ]
    health = await read_health(rt)
    credentials = sorted(
        (
            CredentialExpiry(
                account=h.account,
                credential="OAuth 2.0 access token",
                expires_at=h.token_expires_at,
            )
            for h in health
            if h.token_expires_at is not None
        ),
        key=lambda c: c.expires_at,
    )
    failing = [
        AccountProblem(
            account=h.account,
            failures=h.failures,
            last_error=h.last_error or h.last_auth_error,
            last_error_at=h.last_error_at or h.last_auth_error_at,
        )
        for h in health
        if h.failures > 0
    ]
    return Overview(
        fetchers=await fetcher_status(rt),
        queues=queues,
        broker_reachable=any(state is not None for state in depths.values()),
        desk_failed=await rt.store.desk.count(),
        credentials=credentials,
        failing_accounts=failing,
    )
