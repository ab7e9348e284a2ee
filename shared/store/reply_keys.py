"""Idempotency keys of the answers sent through the API (``POST /cases/{n}/reply``).

A key names one request: the first call stores which mail it became; a retried call with the
same key finds it and answers the same, without sending again. Keys expire after 7 days (the
mail id derives from the key, so even a retry after that is sent once: the outbox knows it).
"""

from __future__ import annotations

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from shared.models.records import ReplyKey
from shared.store._base import Doc
from shared.store._errors import Repo


class ReplyKeyRepo(Repo):
    """``reply_keys``: one document per (case, key)."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._coll = db["reply_keys"]

    async def claim(self, *, key: ReplyKey) -> ReplyKey:
        """Store the key unless it is stored; the stored one (compare its digest)."""
        doc = key.model_dump(by_alias=True)
        stored = await self._coll.find_one_and_update(
            {"_id": key.id},
            {"$setOnInsert": doc},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        return ReplyKey.model_validate(stored)

    async def published(self, *, key_id: str) -> None:
        """Record that the key's mail was handed to the sender."""
        await self._coll.update_one({"_id": key_id}, {"$set": {"published": True}})
