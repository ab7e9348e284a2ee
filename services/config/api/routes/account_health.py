"""Credential and fetch health of incoming accounts, as the fetcher records it (read-only,
for operators too). Nothing secret is in it: times, counts and the fetcher's error texts."""

from __future__ import annotations

from fastapi import APIRouter

from services.config.account_health import read_health
from services.config.api.deps import RuntimeDep, Viewer
from shared.store.account_health import AccountHealth

router = APIRouter(tags=["accounts"])


@router.get("/account-health")
async def list_account_health(rt: RuntimeDep, _: Viewer) -> list[AccountHealth]:
    """The health of every configured account (empty fields: no round ran yet)."""
    return await read_health(rt)


@router.get("/accounts/{name}/health")
async def get_account_health(name: str, rt: RuntimeDep, _: Viewer) -> AccountHealth:
    """One account's last good fetch, OAuth 2.0 token time and expiry, last auth error and
    last error."""
    return (await read_health(rt, name=name))[0]
