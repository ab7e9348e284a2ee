"""Outgoing mail and its delivery state, per mail and per recipient."""

from __future__ import annotations

from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from shared.models.messages import utcnow
from shared.models.records import OutboxEntry, OutboxStatus, RecipientDelivery
from shared.store._base import Doc


class OutboxRepo:
    """``outbox``: one document per outgoing mail id."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._coll = db["outbox"]

    async def claim(self, *, entry: OutboxEntry) -> OutboxEntry:
        """Create the entry once and count an attempt; a redelivery gets the stored one back."""
        doc = entry.model_dump(by_alias=True)
        doc.pop("attempts")
        result = await self._coll.find_one_and_update(
            {"_id": entry.id},
            {"$setOnInsert": doc, "$inc": {"attempts": 1}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert result is not None
        return OutboxEntry.model_validate(result)

    async def mark(self, *, mail_id: str, status: str, **fields: Any) -> None:
        """Record the delivery outcome."""
        extra: Doc = {"sent_at": utcnow()} if status == "sent" else {}
        await self._coll.update_one(
            {"_id": mail_id}, {"$set": {"status": status, **extra, **fields}}
        )

    async def record(
        self,
        *,
        mail_id: str,
        status: OutboxStatus,
        recipients: list[RecipientDelivery],
        **fields: Any,
    ) -> OutboxEntry | None:
        """Store the mail's status with the state of every recipient, in one write; the
        entry as stored (None if there is no entry for ``mail_id``).

        The whole list is written (no positional updates): one consumer handles a mail at a
        time, and a whole-list write works on every MongoDB-compatible server.
        """
        extra: Doc = {"sent_at": utcnow()} if status in ("sent", "intercepted") else {}
        doc = await self._coll.find_one_and_update(
            {"_id": mail_id},
            {
                "$set": {
                    "status": status,
                    "recipients": [r.model_dump(mode="python") for r in recipients],
                    **extra,
                    **fields,
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        return OutboxEntry.model_validate(doc) if doc else None

    async def give_up(self, *, mail_id: str, error: str) -> None:
        """Mark the mail failed; recipients still waiting fail with ``error``."""
        entry = await self.get(mail_id=mail_id)
        if entry is None:
            return
        now = utcnow()
        recipients = [
            r.model_copy(update={"state": "failed", "reply": error, "updated_at": now})
            if r.pending
            else r
            for r in entry.recipients
        ]
        await self.record(mail_id=mail_id, status="failed", recipients=recipients, error=error)

    async def get(self, *, mail_id: str) -> OutboxEntry | None:
        """One entry."""
        doc = await self._coll.find_one({"_id": mail_id})
        return OutboxEntry.model_validate(doc) if doc else None

    async def recent(
        self, *, case_number: int | None = None, limit: int = 100
    ) -> list[OutboxEntry]:
        """The newest entries first."""
        query: Doc = {"case_number": case_number} if case_number is not None else {}
        cursor = self._coll.find(query).sort("created_at", -1).limit(limit)
        return [OutboxEntry.model_validate(d) async for d in cursor]
