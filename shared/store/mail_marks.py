"""What the processor learns about mails already stored: complaints and second copies.

A spam complaint is recorded on our outgoing mail it reports (``complaint``, ``complained_at``
on its ``messages`` document, beside a bounce's ``bounce``). Every incoming mail's document
carries the account it came from and its content digest, so that a second copy of the same
mail (same Message-ID and digest, fetched from another account or delivered twice) finds the
first one and joins its case.

Two copies processed at the same moment (the same mail fetched from support@ and sales@ in
one round) would each find no first copy and open a case each; the one that opens a case
first takes a claim on the mail in ``copy_claims`` (unique by Message-ID and digest), and
the other waits until the holder's case exists (see ``services.processor.process``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pymongo import InsertOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.errors import StoreError
from shared.models.messages import utcnow
from shared.store._base import Doc
from shared.store._batch import Writes
from shared.store._errors import Repo

if TYPE_CHECKING:  # cases imports this module (CopyNote)
    from shared.store.cases import ThreadMessage


@dataclass(frozen=True)
class FirstCopy:
    """The earlier copy of a mail: its case, raw mail and account."""

    case_number: int
    raw_id: str
    account: str | None


@dataclass(frozen=True)
class CopyNote:
    """Where an incoming mail came from, its content digest, and the earlier copy it repeats."""

    account: str
    digest: str
    duplicate_of: str | None = None

    def fields(self) -> Doc:
        """The fields it sets on the mail's ``messages`` document."""
        fields: Doc = {"account": self.account, "content_digest": self.digest}
        if self.duplicate_of is not None:
            fields["duplicate_of"] = self.duplicate_of
        return fields


class MailMarkRepo(Repo):
    """Marks on ``messages`` documents."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._messages = db["messages"]
        self._claims = db["copy_claims"]
        self._new_claims = Writes(self._claims)

    async def record_complaint(self, *, message_id: str, complaint: dict[str, Any]) -> None:
        """Record a spam complaint on our outgoing mail with this Message-ID."""
        await self._messages.update_many(
            {"message_id": message_id, "direction": "out"},
            {"$set": {"complaint": complaint, "complained_at": utcnow()}},
        )

    async def note_copy(self, *, raw_id: str, note: CopyNote) -> None:
        """Record ``note`` on the attached incoming mail ``raw_id`` (when it was attached
        without it: :meth:`CaseRepo.add_message` takes it along with the mail)."""
        await self._messages.update_one({"raw_id": raw_id}, {"$set": note.fields()})

    async def first_copy(
        self, *, message_id: str, digest: str, since: datetime, raw_id: str
    ) -> FirstCopy | None:
        """The oldest other incoming mail with this Message-ID and digest since ``since``
        (:func:`first_copy_among` is the same rule over messages read already)."""
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

    async def claim_first_copy(
        self, *, message_id: str, digest: str, raw_id: str, since: datetime
    ) -> str:
        """Claim being the first copy of this mail; the raw id holding the claim (``raw_id``
        when this copy is first). A claim taken before ``since`` (outside the duplicate
        window) passes to this copy."""
        key = _claim_key(message_id, digest)
        for _ in range(_CLAIM_TRIES):
            now = utcnow()
            # An insert, which many mails send together, rather than a findAndModify: almost
            # every mail is the only copy and finds no claim (shared.store._batch).
            try:
                await self._new_claims.write(
                    InsertOne({"_id": key, "raw_id": raw_id, "claimed_at": now})
                )
                return raw_id
            except DuplicateKeyError:
                doc = await self._claims.find_one({"_id": key})
            if doc is None:
                continue  # removed in between (by hand): claim it afresh
            holder = str(doc["raw_id"])
            if holder == raw_id:
                return holder
            expired = await self._claims.update_one(
                {"_id": key, "raw_id": holder, "claimed_at": {"$lt": since}},
                {"$set": {"raw_id": raw_id, "claimed_at": now}},
            )
            return raw_id if expired.modified_count else holder
        raise StoreError("the copy claim could not be read", operation="claim_first_copy")

    async def take_copy_claim(
        self, *, message_id: str, digest: str, holder: str, raw_id: str
    ) -> None:
        """Pass the claim from ``holder`` (a copy that failed or is gone) to ``raw_id``."""
        key = _claim_key(message_id, digest)
        await self._claims.update_one(
            {"_id": key, "raw_id": holder}, {"$set": {"raw_id": raw_id, "claimed_at": utcnow()}}
        )


_CLAIM_TRIES = 5


def _claim_key(message_id: str, digest: str) -> str:
    return hashlib.sha256(f"{message_id}\n{digest}".encode()).hexdigest()


def first_copy_among(
    messages: Iterable[ThreadMessage], *, digest: str, since: datetime, raw_id: str
) -> FirstCopy | None:
    """:meth:`MailMarkRepo.first_copy` over messages already read with that Message-ID."""
    copies = [
        m
        for m in messages
        if m.direction == "in"
        and m.content_digest == digest
        and m.raw_id != raw_id
        and m.created_at >= since
    ]
    first = min(copies, key=lambda m: m.created_at, default=None)
    return None if first is None else FirstCopy(first.case_number, str(first.raw_id), first.account)
