"""The failed-mail desk: dead-lettered messages, their reasons, and replay audits."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from shared.errors import NotFound
from shared.models.messages import utcnow
from shared.models.records import FailedMail, ReplayRecord
from shared.store._base import Doc
from shared.store._errors import Repo


class DeskRepo(Repo):
    """``failed_mails`` and ``replays``."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._failed = db["failed_mails"]
        self._replays = db["replays"]

    async def record(
        self,
        *,
        failed_id: str,
        queue: str,
        routing_key: str,
        ref: str,
        body: dict[str, Any],
        account: str | None,
        error: str,
        attempts: int,
        sender: str | None = None,
        subject: str | None = None,
        failed_at: datetime | None = None,
    ) -> FailedMail:
        """Put a dead letter on the desk (again, if it failed after a replay)."""
        now = failed_at or utcnow()
        doc = await self._failed.find_one_and_update(
            {"_id": failed_id},
            {
                "$set": {
                    "queue": queue,
                    "routing_key": routing_key,
                    "ref": ref,
                    "body": body,
                    "account": account,
                    "sender": sender,
                    "subject": subject,
                    "error": error,
                    "attempts": attempts,
                    "last_failed_at": now,
                    "status": "failed",
                },
                "$setOnInsert": {"first_failed_at": now, "replays": 0},
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert doc is not None
        return FailedMail.model_validate(doc)

    async def get(self, *, failed_id: str) -> FailedMail:
        """One desk entry."""
        doc = await self._failed.find_one({"_id": failed_id})
        if doc is None:
            raise NotFound(f"no failed mail {failed_id}")
        return FailedMail.model_validate(doc)

    async def search(
        self,
        *,
        status: str | None = "failed",
        account: str | None = None,
        error_contains: str | None = None,
        sender_contains: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[FailedMail]:
        """Desk entries, most recent failure first; text filters ignore case."""
        query: Doc = {"status": status} if status else {"status": {"$ne": "deleted"}}
        if account:
            query["account"] = account
        if since or until:
            query["last_failed_at"] = {
                **({"$gte": since} if since else {}),
                **({"$lte": until} if until else {}),
            }
        for field, needle in (("error", error_contains), ("sender", sender_contains)):
            if needle:
                query[field] = {"$regex": re.escape(needle), "$options": "i"}
        cursor = self._failed.find(query).sort("last_failed_at", -1).limit(limit)
        return [FailedMail.model_validate(d) async for d in cursor]

    async def count(self, *, status: str = "failed") -> int:
        """How many entries have ``status`` (the desk's size: ``failed``)."""
        return await self._failed.count_documents({"status": status})

    async def mark_deleted(self, *, failed_id: str) -> bool:
        """Take an entry off the desk (kept for the audit); False if it was gone already."""
        result = await self._failed.update_one(
            {"_id": failed_id, "status": {"$ne": "deleted"}}, {"$set": {"status": "deleted"}}
        )
        return result.modified_count == 1

    async def take_for_replay(self, *, failed_id: str) -> FailedMail | None:
        """Atomically move an entry from failed to replayed; None if someone else did."""
        doc = await self._failed.find_one_and_update(
            {"_id": failed_id, "status": "failed"},
            {"$set": {"status": "replayed"}, "$inc": {"replays": 1}},
            return_document=ReturnDocument.AFTER,
        )
        return FailedMail.model_validate(doc) if doc else None

    async def audit(self, *, record: ReplayRecord) -> None:
        """Write one replay audit record."""
        await self._replays.insert_one(record.model_dump())

    async def replays(self, *, failed_id: str) -> list[ReplayRecord]:
        """The replay audit of one entry, oldest first."""
        cursor = self._replays.find({"failed_id": failed_id}, {"_id": 0}).sort("at", 1)
        return [ReplayRecord.model_validate(d) async for d in cursor]
