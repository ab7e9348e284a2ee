"""Outgoing mail and its delivery state, per mail and per recipient."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from shared.models.messages import utcnow
from shared.models.records import OutboxEntry, OutboxStatus, RecipientDelivery
from shared.store._base import Doc, same_address
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
        if status != "queued":  # nothing left to try again
            changes.setdefault("next_attempt_at", None)
        if status in ("sent", "intercepted"):
            changes["sent_at"] = utcnow()
        dumped = [r.model_dump(mode="python") for r in recipients]
        await self._coll.update_one({"_id": entry.id}, {"$set": {**changes, "recipients": dumped}})
        return entry.model_copy(update={**changes, "recipients": recipients})

    async def schedule(self, *, mail_id: str, at: datetime) -> None:
        """Record when the mail's deferred recipients are tried again."""
        await self._coll.update_one({"_id": mail_id}, {"$set": {"next_attempt_at": at}})

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

    async def page(self, *, query: OutboxQuery, limit: int) -> list[OutboxEntry]:
        """Up to ``limit`` entries matching ``query``, newest first, from its cursor on.

        A range read on an index that starts with the filtered field and ends with
        ``created_at`` (never ``skip``): the cost of a page does not grow with the outbox.
        """
        cursor = self._coll.find(query.filter()).sort([("created_at", -1), ("_id", -1)])
        return [OutboxEntry.model_validate(d) async for d in cursor.limit(limit)]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


@dataclass(frozen=True)
class OutboxQuery:
    """A filter of the outbox list and where the page starts (after ``before``)."""

    status: OutboxStatus | None = None
    deferred: bool = False
    """Only mails with a recipient waiting for a retry."""
    case_number: int | None = None
    recipient: str | None = None
    before: tuple[datetime, str] | None = None
    """The (created_at, id) of the last entry of the previous page."""

    def filter(self) -> Doc:
        """The MongoDB filter."""
        query: Doc = {}
        if self.status is not None:
            query["status"] = self.status
        if self.deferred:
            query["recipients.state"] = "deferred"
        if self.case_number is not None:
            query["case_number"] = self.case_number
        if self.recipient is not None:
            query["recipients.address"] = same_address(self.recipient)
        if self.before is not None:
            at, last_id = self.before
            query["created_at"] = {"$lte": at}
            query["$nor"] = [{"created_at": at, "_id": {"$gte": last_id}}]
        return query


def cursor_of(entry: OutboxEntry) -> str:
    """The opaque cursor of the page after ``entry``: its time (ms) and id."""
    # Integer arithmetic: MongoDB keeps milliseconds, and a float would round some away.
    return f"{(entry.created_at - _EPOCH) // _MS}.{entry.id}"


def parse_cursor(value: str) -> tuple[datetime, str]:
    """The (created_at, id) a cursor names; ValueError when it is not one."""
    millis, _, last_id = value.partition(".")
    if not millis.isdigit() or not last_id:
        raise ValueError("not a cursor of this list")
    return _EPOCH + int(millis) * _MS, last_id
