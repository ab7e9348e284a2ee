"""Raw mails, stored before anything else happens to them."""

from __future__ import annotations

from typing import Any

from bson import Binary
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.errors import NotFound
from shared.models.messages import utcnow
from shared.models.records import RawEmail, RawStatus
from shared.store._base import Doc


class RawEmailRepo:
    """``raw_emails``: unique per (account, source key)."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._coll = db["raw_emails"]

    async def insert(self, *, record: RawEmail, data: bytes) -> tuple[RawEmail, bool]:
        """Store a raw mail; when its (account, source key) exists, return that one instead.

        The second item is True when this call created the document.
        """
        doc = record.model_dump(by_alias=True)
        doc["data"] = Binary(data)
        try:
            await self._coll.insert_one(doc)
            return record, True
        except DuplicateKeyError:
            existing = await self._coll.find_one(
                {"account": record.account, "source_key": record.source_key}, {"data": 0}
            )
            if existing is None:
                raise
            return RawEmail.model_validate(existing), False

    async def get(self, *, raw_id: str) -> RawEmail:
        """The record without its bytes."""
        doc = await self._coll.find_one({"_id": raw_id}, {"data": 0})
        if doc is None:
            raise NotFound(f"no raw mail {raw_id}")
        return RawEmail.model_validate(doc)

    async def data(self, *, raw_id: str) -> bytes:
        """The raw bytes exactly as fetched."""
        doc = await self._coll.find_one({"_id": raw_id}, {"data": 1})
        if doc is None:
            raise NotFound(f"no raw mail {raw_id}")
        return bytes(doc["data"])

    async def set_status(
        self,
        *,
        raw_id: str,
        status: RawStatus,
        only_from: tuple[RawStatus, ...] = (),
        **fields: Any,
    ) -> bool:
        """Move a mail to ``status`` (optionally only from the given ones); True if it moved."""
        query: Doc = {"_id": raw_id}
        if only_from:
            query["status"] = {"$in": list(only_from)}
        result = await self._coll.update_one(query, {"$set": {"status": status, **fields}})
        return result.modified_count == 1

    async def start_attempt(self, *, raw_id: str) -> RawEmail:
        """Count a processing attempt and return the record."""
        doc = await self._coll.find_one_and_update(
            {"_id": raw_id},
            {"$inc": {"attempts": 1}},
            projection={"data": 0},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            raise NotFound(f"no raw mail {raw_id}")
        return RawEmail.model_validate(doc)

    async def record_failure(self, *, raw_id: str, error: str) -> None:
        """Mark the mail failed with its reason, keeping the first failure time."""
        now = utcnow()
        await self._coll.update_one(
            {"_id": raw_id},
            [
                {
                    "$set": {
                        "status": "failed",
                        "error": error,
                        "last_failed_at": now,
                        "first_failed_at": {"$ifNull": ["$first_failed_at", now]},
                    }
                }
            ],
        )

    async def recent(
        self, *, account: str | None = None, status: RawStatus | None = None, limit: int = 100
    ) -> list[RawEmail]:
        """Recent raw mails, newest first."""
        query: Doc = {}
        if account:
            query["account"] = account
        if status:
            query["status"] = status
        cursor = self._coll.find(query, {"data": 0}).sort("fetched_at", -1).limit(limit)
        return [RawEmail.model_validate(d) async for d in cursor]

    async def count(self, *, account: str | None = None) -> int:
        """How many raw mails are stored."""
        return await self._coll.count_documents({"account": account} if account else {})
