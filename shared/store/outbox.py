"""Outgoing mail and its delivery state, per mail and per recipient."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from shared.models.messages import utcnow
from shared.models.records import OutboxEntry, OutboxStatus, RecipientDelivery
from shared.store._base import Doc
from shared.store._batch import Batcher
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

    async def write_batch(self, ops: Sequence[OutboxOp]) -> list[OutboxEntry | None]:
        """Write ``ops`` (for distinct mails) in one bulk write; for each claim its entry,
        for the other ops None.

        A claim whose entry existed (a redelivery) is read back in one more command; a new
        one is the entry as claimed. An op the server refused alone (a claim racing another
        instance's for the same mail) is done again by itself.
        """
        requests = [op.request() for op in ops]
        try:
            result = await self._coll.bulk_write(requests, ordered=False)
            upserted = set(result.upserted_ids or {})
            refused: set[int] = set()
        except BulkWriteError as exc:
            details = exc.details or {}
            upserted = {u["index"] for u in details.get("upserted", [])}
            refused = {e["index"] for e in details.get("writeErrors", [])}
        out: list[OutboxEntry | None] = [None] * len(ops)
        existing: dict[str, int] = {}
        for i, op in enumerate(ops):
            if i in refused:
                out[i] = await self._again(op)
            elif isinstance(op, Claim):
                if i in upserted:
                    out[i] = op.entry.model_copy(update={"attempts": 1})
                else:
                    existing[op.entry.id] = i
        if existing:
            async for doc in self._coll.find({"_id": {"$in": list(existing)}}):
                out[existing[doc["_id"]]] = OutboxEntry.model_validate(doc)
        return out

    async def _again(self, op: OutboxOp) -> OutboxEntry | None:
        if isinstance(op, Claim):
            return await self.claim(entry=op.entry)
        await self._coll.bulk_write([op.request()])
        return None

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
        op = Record.of(entry, status, recipients, fields)
        await self._coll.bulk_write([op.request()])
        return op.applied()

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

    async def page(
        self, *, query: OutboxQuery, limit: int
    ) -> tuple[list[OutboxEntry], tuple[datetime, str] | None]:
        """Up to ``limit`` entries matching ``query``, newest first, from its cursor on, and
        the key the next page starts below (None: no more).

        Keyset paging by bounded range reads, as the desk's: each read is a window of
        ``created_at`` with both bounds on the (``status`` | ``case_number``, created_at)
        index, nothing else in the query (the local stand-in's planner scans the collection
        for anything else and sorts whatever matches); the other filters and the order are
        applied here. The window starts small and widens by the density it finds. A
        recipient filter reads at most :data:`SCAN_LIMIT` entries a page.
        """
        top = query.before or (_LATEST, "")
        now = utcnow()
        span, scanned, hi = FIRST_SPAN, 0, top
        found: list[OutboxEntry] = []
        while True:
            lo = max(_EPOCH, min(hi[0], now) - span)
            window, read = await self._window(query, lo, hi[0])
            scanned += read
            found += [e for e in window if _key(e) < hi and query.matches(e)]
            if len(found) >= limit:
                found.sort(key=_key, reverse=True)
                return found[:limit], _key(found[limit - 1])
            hi = (lo, "")
            if lo <= _EPOCH or scanned >= SCAN_LIMIT:
                found.sort(key=_key, reverse=True)
                return found, None if lo <= _EPOCH else hi
            # A recipient's share of the mail is unknown: aim at a fixed number of reads.
            aim = SEARCH_READ if query.recipient else (limit + 1 - len(found)) * 1.25
            factor = MAX_GROWTH if not read else min(max(aim / read, 0.125), 8.0)
            span = min(max(span * factor, _MS), MAX_SPAN)

    async def _window(
        self, query: OutboxQuery, lo: datetime, hi: datetime
    ) -> tuple[list[OutboxEntry], int]:
        """The entries in [lo, hi] whose recipients match, and how many were read."""
        find: Doc = {**query.prefix(), "created_at": {"$gte": lo, "$lte": hi}}
        wanted = query.recipient.casefold() if query.recipient else None
        read = 0
        kept = []
        async for d in self._coll.find(find):
            read += 1
            # Checked on the raw document: a search reads many entries, and validating
            # each as a model would cost more than the read.
            if wanted is None or any(
                str(r.get("address", "")).casefold() == wanted for r in d.get("recipients", [])
            ):
                kept.append(OutboxEntry.model_validate(d))
        return kept, read


@dataclass(frozen=True)
class Claim:
    """Create the entry once and count an attempt (see ``OutboxRepo.claim``)."""

    entry: OutboxEntry

    def request(self) -> UpdateOne:
        """The bulk-write request."""
        doc = self.entry.model_dump(by_alias=True)
        doc.pop("attempts")
        return UpdateOne(
            {"_id": self.entry.id}, {"$setOnInsert": doc, "$inc": {"attempts": 1}}, upsert=True
        )


@dataclass(frozen=True)
class Record:
    """The mail's status and every recipient's state (see ``OutboxRepo.record``)."""

    entry: OutboxEntry
    changes: Doc
    recipients: list[RecipientDelivery]

    @classmethod
    def of(
        cls,
        entry: OutboxEntry,
        status: OutboxStatus,
        recipients: list[RecipientDelivery],
        fields: Doc,
    ) -> Record:
        """The record of ``status``, ``recipients`` and further ``fields`` on ``entry``."""
        changes: Doc = {"status": status, **fields}
        if status != "queued":  # nothing left to try again
            changes.setdefault("next_attempt_at", None)
        if status in ("sent", "intercepted"):
            changes["sent_at"] = utcnow()
        return cls(entry, changes, recipients)

    def request(self) -> UpdateOne:
        """The bulk-write request."""
        dumped = [r.model_dump(mode="python") for r in self.recipients]
        return UpdateOne({"_id": self.entry.id}, {"$set": {**self.changes, "recipients": dumped}})

    def applied(self) -> OutboxEntry:
        """The entry with the record's changes."""
        return self.entry.model_copy(update={**self.changes, "recipients": self.recipients})


OutboxOp = Claim | Record


class OutboxBatcher:
    """Group commit of the sender's outbox writes: the claims and outcomes of the mails in
    flight at once go to MongoDB in one bulk write (a send claim is written at once, see
    :meth:`claim_send`).

    Each call returns when its own write is durable, exactly as the single write it
    replaces, so the sender's order is kept: a claim is durable before the mail goes on the
    wire, an outcome before the message is acknowledged. At most :attr:`WRITERS` bulk writes
    run at once, each of at most ``batch_size`` writes (``shared.store._batch.Batcher``). A
    failed bulk write fails every call in it with the store's error (each caller retries as
    it would have for its own write).
    """

    WRITERS = 4
    """Bulk writes under way at once."""

    def __init__(self, repo: OutboxRepo, batch_size: int) -> None:
        self._repo = repo
        self._batcher: Batcher[OutboxOp, OutboxEntry | None] = Batcher(
            repo.write_batch, limit=batch_size, runs=self.WRITERS
        )

    async def claim(self, *, entry: OutboxEntry) -> OutboxEntry:
        """``OutboxRepo.claim``, batched."""
        claimed = await self._batcher.submit(Claim(entry))
        assert claimed is not None
        return claimed

    async def claim_send(self, *, mail_id: str) -> None:
        """``OutboxRepo.claim_send``, written at once, not batched: the mail holds an SMTP
        connection meanwhile, and waiting for other mails' writes idled it (measured on
        one connection: 63 mail/s batched, 98 written at once; 108 before any batching)."""
        await self._repo.claim_send(mail_id=mail_id)

    async def record(
        self,
        *,
        entry: OutboxEntry,
        status: OutboxStatus,
        recipients: list[RecipientDelivery],
        **fields: Any,
    ) -> OutboxEntry:
        """``OutboxRepo.record``, batched."""
        op = Record.of(entry, status, recipients, fields)
        await self._batcher.submit(op)
        return op.applied()


FIRST_SPAN = timedelta(minutes=1)
"""The first window of a page: small, since a busy hour sends thousands of mails."""
MAX_GROWTH = 8
MAX_SPAN = timedelta(days=36500)
SCAN_LIMIT = 1000
"""A page filtered by recipient reads at most about this many entries."""
SEARCH_READ = 300
"""What each window of a recipient search aims to read."""
_LATEST = datetime(9999, 1, 1, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def _key(entry: OutboxEntry) -> tuple[datetime, str]:
    return (entry.created_at, entry.id)


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

    def prefix(self) -> Doc:
        """The equality the index read starts with (one of case and status, or none)."""
        if self.case_number is not None:
            return {"case_number": self.case_number}
        return {"status": self.status} if self.status is not None else {}

    def matches(self, entry: OutboxEntry) -> bool:
        """Whether ``entry`` passes every filter (the index read applies the prefix only)."""
        wanted = self.recipient.casefold() if self.recipient else None
        return (
            (self.status is None or entry.status == self.status)
            and (self.case_number is None or entry.case_number == self.case_number)
            and (not self.deferred or any(r.state == "deferred" for r in entry.recipients))
            and (wanted is None or any(r.address.casefold() == wanted for r in entry.recipients))
        )


def cursor_of(key: tuple[datetime, str]) -> str:
    """The opaque cursor of the page below ``key`` (a time and an id; an empty id: below
    that time), as milliseconds and the id."""
    # Integer arithmetic: MongoDB keeps milliseconds, and a float would round some away.
    return f"{(key[0] - _EPOCH) // _MS}.{key[1]}"


def parse_cursor(value: str) -> tuple[datetime, str]:
    """The (created_at, id) a cursor names; ValueError when it is not one."""
    millis, _, last_id = value.partition(".")
    if not millis.isdigit():
        raise ValueError("not a cursor of this list")
    return _EPOCH + int(millis) * _MS, last_id
