"""The fetcher fleet: instances and who fetches which account."""

from __future__ import annotations

from fastapi import APIRouter

from services.config.api.deps import RuntimeDep, Viewer
from services.config.fetchers import (
    AccountOwnership,
    FetcherStatus,
    account_ownership,
    fetcher_status,
)

router = APIRouter(prefix="/fetchers", tags=["fetchers"])


@router.get("")
async def list_fetchers(rt: RuntimeDep, _: Viewer) -> list[FetcherStatus]:
    """Every fetcher instance with its heartbeat age, the accounts it holds and its counts
    (a killed instance stays listed, not alive, for an hour)."""
    return await fetcher_status(rt)


@router.get("/accounts")
async def list_ownership(rt: RuntimeDep, _: Viewer) -> list[AccountOwnership]:
    """Every account's owner, lease and last fetch."""
    return await account_ownership(rt)
