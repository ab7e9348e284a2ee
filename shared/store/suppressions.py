"""``suppressions``: addresses that get no automatic mail (a spam complaint put them there).

One document per lower-case address (its ``_id``). An address lands here when a feedback
report (ARF) says its owner marked our mail as spam, or when an operator adds it; an operator
sees the list and takes an address off again (``mailroom suppressions``, ``/suppressions``).
Acknowledgements and other automatic mail are not sent to a listed address; mail a person
writes is not affected.
"""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

from shared.models.messages import utcnow
from shared.models.records import Suppression
from shared.store._base import Doc
from shared.store._batch import Lookups
from shared.store._errors import Repo

MAX_LISTED = 10_000


class SuppressionRepo(Repo):
    """The suppression list."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._coll = db["suppressions"]
        self._listed = Lookups(self._coll, "_id", {"_id": 1})

    async def add(self, *, address: str, reason: str, source: str) -> Suppression:
        """List ``address`` (again): the newest reason and source win."""
        entry = Suppression(address=address.strip().lower(), reason=reason, source=source)
        doc = entry.model_dump()
        doc.pop("created_at")
        await self._coll.update_one(
            {"_id": entry.address},
            {"$set": doc, "$setOnInsert": {"created_at": utcnow()}},
            upsert=True,
        )
        return await self.get(address=entry.address) or entry

    async def get(self, *, address: str) -> Suppression | None:
        """The entry of ``address``, None when it is not listed."""
        doc = await self._coll.find_one({"_id": address.strip().lower()})
        return None if doc is None else Suppression.model_validate(doc)

    async def remove(self, *, address: str) -> bool:
        """Take ``address`` off the list; False when it was not on it."""
        result = await self._coll.delete_one({"_id": address.strip().lower()})
        return result.deleted_count == 1

    async def listed(self, *, limit: int = 1000) -> list[Suppression]:
        """The newest entries first."""
        cursor = self._coll.find({}).sort("created_at", -1).limit(min(limit, MAX_LISTED))
        return [Suppression.model_validate(d) async for d in cursor]

    async def suppressed(self, *, addresses: list[str]) -> set[str]:
        """Which of ``addresses`` (lower-cased) are listed."""
        wanted = list({a.strip().lower() for a in addresses})
        if not wanted:
            return set()
        return {str(d["_id"]) for d in await self._listed.find(wanted) or []}
