"""The suppression list: addresses that get no automatic mail (spam complaints, operators)."""

from __future__ import annotations

from fastapi import APIRouter, Query, status

from services.config.api.deps import Operator, RuntimeDep, Viewer
from services.config.suppressions import (
    SuppressionAdd,
    add_suppression,
    list_suppressions,
    remove_suppression,
)
from shared.models.records import Suppression

router = APIRouter(prefix="/suppressions", tags=["suppressions"])


@router.get("")
async def list_entries(
    rt: RuntimeDep, _: Viewer, limit: int = Query(default=1000, ge=1, le=10_000)
) -> list[Suppression]:
    """The listed addresses, newest first, with reason and source."""
    return await list_suppressions(rt, limit=limit)


@router.post("", status_code=status.HTTP_201_CREATED)
async def add_entry(rt: RuntimeDep, who: Operator, entry: SuppressionAdd) -> Suppression:
    """List an address: no automatic mail to it from now on."""
    return await add_suppression(rt, entry=entry, by=who)


@router.delete("/{address}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_entry(rt: RuntimeDep, _: Operator, address: str) -> None:
    """Take an address off the list (404 when it is not listed)."""
    await remove_suppression(rt, address=address)
