"""Raw mails, stored before anything else happens to them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bson import Binary
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

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

    async def insert_many(
        self, *, records: Sequence[tuple[RawEmail, bytes]]
    ) -> list[tuple[RawEmail, bool]]:
        """:meth:`insert` for each (record, bytes), in order, in one round trip.

        Mails stored before (same account and source key) come back as the stored record
        with False, as from :meth:`insert`.
        """
        if not records:
            return []
        docs = [
            record.model_dump(by_alias=True) | {"data": Binary(data)} for record, data in records
        ]
        duplicates: set[int] = set()
        try:
            await self._coll.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if not errors or any(error.get("code") != 11000 for error in errors):
                raise
            duplicates = {int(error["index"]) for error in errors}
        existing: dict[tuple[str, str], RawEmail] = {}
        if duplicates:
            wanted = [records[i][0] for i in duplicates]
            query = {
                "account": {"$in": sorted({r.account for r in wanted})},
                "source_key": {"$in": sorted({r.source_key for r in wanted})},
            }
            async for doc in self._coll.find(query, {"data": 0}):
                found = RawEmail.model_validate(doc)
                existing[(found.account, found.source_key)] = found
        result: list[tuple[RawEmail, bool]] = []
        for index, (record, _) in enumerate(records):
            if index not in duplicates:
                result.append((record, True))
                continue
            stored = existing.get((record.account, record.source_key))
            if stored is None:  # deleted between the insert and the lookup
                raise NotFound(f"raw mail {record.account}/{record.source_key} vanished")
            result.append((stored, False))
        return result

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

    async def set_status_many(
        self,
        *,
        raw_ids: Sequence[str],
        status: RawStatus,
        only_from: tuple[RawStatus, ...] = (),
    ) -> int:
        """:meth:`set_status` for many mails in one round trip; returns how many moved."""
        if not raw_ids:
            return 0
        query: Doc = {"_id": {"$in": list(raw_ids)}}
        if only_from:
            query["status"] = {"$in": list(only_from)}
        result = await self._coll.update_many(query, {"$set": {"status": status}})
        return result.modified_count

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
