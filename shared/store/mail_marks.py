"""What the processor learns about mails already stored: complaints and second copies.

A spam complaint is recorded on our outgoing mail it reports (``complaint``, ``complained_at``
on its ``messages`` document, beside a bounce's ``bounce``). Every incoming mail's document
carries the account it came from and its content digest, so that a second copy of the same
mail (same Message-ID and digest, fetched from another account or delivered twice) finds the
first one and joins its case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from shared.models.messages import utcnow
from shared.store._base import Doc
from shared.store._errors import Repo


@dataclass(frozen=True)
class FirstCopy:
    """The earlier copy of a mail: its case, raw mail and account."""

    case_number: int
    raw_id: str
    account: str | None


class MailMarkRepo(Repo):
    """Marks on ``messages`` documents."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._messages = db["messages"]

    async def record_complaint(self, *, message_id: str, complaint: dict[str, Any]) -> None:
        """Record a spam complaint on our outgoing mail with this Message-ID."""
        await self._messages.update_many(
            {"message_id": message_id, "direction": "out"},
            {"$set": {"complaint": complaint, "complained_at": utcnow()}},
        )

    async def note_copy(
        self, *, raw_id: str, account: str, digest: str, duplicate_of: str | None
    ) -> None:
        """Record where an incoming mail came from and its digest (and the copy it repeats)."""
        fields: Doc = {"account": account, "content_digest": digest}
        if duplicate_of is not None:
            fields["duplicate_of"] = duplicate_of
        await self._messages.update_one({"raw_id": raw_id}, {"$set": fields})

    async def first_copy(
        self, *, message_id: str, digest: str, since: datetime, raw_id: str
    ) -> FirstCopy | None:
        """The oldest other incoming mail with this Message-ID and digest since ``since``."""
        cursor = (
            self._messages.find(
                {
                    "message_id": message_id,
                    "direction": "in",
                    "content_digest": digest,
                    "raw_id": {"$ne": raw_id},
                    "created_at": {"$gte": since},
                },
                {"case_number": 1, "raw_id": 1, "account": 1},
            )
            .sort("created_at", 1)
            .limit(1)
        )
        async for doc in cursor:
            return FirstCopy(int(doc["case_number"]), str(doc["raw_id"]), doc.get("account"))
        return None
