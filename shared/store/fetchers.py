"""Fetcher instances' heartbeats: who is alive, what each holds, what each did."""

from __future__ import annotations

from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase

from shared.models.fetchers import FetcherInstance
from shared.store._base import Doc
from shared.store._errors import Repo


class FetcherRepo(Repo):
    """One heartbeat document per running fetcher instance."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._coll = db["fetchers"]

    async def beat(self, *, instance: FetcherInstance) -> None:
        """Write the instance's heartbeat (its time, held accounts and counts)."""
        doc = instance.model_dump(by_alias=True)
        await self._coll.replace_one({"_id": instance.id}, doc, upsert=True)

    async def live(self, *, since: datetime) -> list[FetcherInstance]:
        """Instances whose last heartbeat is at ``since`` or later, by id."""
        cursor = self._coll.find({"heartbeat_at": {"$gte": since}}).sort("_id", 1)
        return [FetcherInstance.model_validate(doc) async for doc in cursor]

    async def all(self) -> list[FetcherInstance]:
        """Every heartbeat document, live or stale (a killed instance's stays), by id."""
        cursor = self._coll.find({}).sort("_id", 1)
        return [FetcherInstance.model_validate(doc) async for doc in cursor]

    async def remove(self, *, instance_id: str) -> None:
        """Drop an instance's heartbeat (clean shutdown: it is gone at once, not after the
        lease time)."""
        await self._coll.delete_one({"_id": instance_id})

    async def prune(self, *, before: datetime) -> int:
        """Drop heartbeats older than ``before`` (instances that died long ago)."""
        result = await self._coll.delete_many({"heartbeat_at": {"$lt": before}})
        return result.deleted_count
