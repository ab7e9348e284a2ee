"""Outgoing mail and its delivery state, per mail and per recipient."""

from __future__ import annotations

from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from shared.models.messages import utcnow
from shared.models.records import OutboxEntry, OutboxStatus, RecipientDelivery
from shared.store._base import Doc
from shared.store._errors import Repo


class OutboxRepo(Repo):
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

    async def record(
        self,
        *,
        entry: OutboxEntry,
        status: OutboxStatus,
        recipients: list[RecipientDelivery],
        **fields: Any,
    ) -> OutboxEntry:
        """Store the mail's status with the state of every recipient, in one write; the entry
        with those changes.

        An ``update_one``, not a find-and-modify returning the document: the caller holds the
        entry already, and on the MongoDB stand-in a find-and-modify costs several times the
        server CPU. The whole list is written (no positional updates): one consumer handles a
        mail at a time, and a whole-list write works on every MongoDB-compatible server.
        """
        changes: Doc = {"status": status, **fields}
        if status in ("sent", "intercepted"):
            changes["sent_at"] = utcnow()
        dumped = [r.model_dump(mode="python") for r in recipients]
        await self._coll.update_one({"_id": entry.id}, {"$set": {**changes, "recipients": dumped}})
        return entry.model_copy(update={**changes, "recipients": recipients})

    async def claim_send(self, *, mail_id: str) -> None:
        """Record that an SMTP transaction of the mail starts now (its outcome clears it)."""
        await self._coll.update_one({"_id": mail_id}, {"$set": {"sending_since": utcnow()}})

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
        await self.record(
            entry=entry, status="failed", recipients=recipients, error=error, sending_since=None
        )

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
