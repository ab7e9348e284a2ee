"""The suppression list as operators see it: list, add, take off (API and CLI share these).

An address is listed by a spam complaint about our mail (see the processor's
``complaint_handler``) or by an operator; while listed it gets no automatic answer. Taking an
address off is how an operator reverses a complaint (e.g. a customer who clicked "spam" by
mistake and asked to hear from us again).
"""

from __future__ import annotations

from pydantic import BaseModel, EmailStr, Field

from shared.errors import NotFound
from shared.models.records import Suppression
from shared.runtime import Runtime


class SuppressionAdd(BaseModel):
    """An address to list, and why."""

    address: EmailStr
    reason: str = Field(default="added by an operator", min_length=1, max_length=500)


async def list_suppressions(rt: Runtime, *, limit: int = 1000) -> list[Suppression]:
    """The listed addresses, newest first."""
    return await rt.store.suppressions.listed(limit=limit)


async def add_suppression(rt: Runtime, *, entry: SuppressionAdd, by: str) -> Suppression:
    """List an address (again): no automatic mail to it from now on."""
    repo = rt.store.suppressions
    return await repo.add(address=str(entry.address), reason=entry.reason, source=by)


async def remove_suppression(rt: Runtime, *, address: str) -> None:
    """Take an address off the list; NotFound when it was not listed."""
    if not await rt.store.suppressions.remove(address=address):
        raise NotFound(f"{address} is not on the suppression list")
