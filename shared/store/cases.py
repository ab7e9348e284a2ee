"""Cases and the mails of each case."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from pymongo import InsertOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.errors import NotFound
from shared.models.messages import MailAddress, utcnow
from shared.models.records import Attachment, Case, CaseMessage
from shared.store._base import Doc, next_sequence
from shared.store._batch import Batcher, Lookups, Writes
from shared.store._errors import Repo
from shared.store.attachments import AttachmentRepo
from shared.store.mail_marks import CopyNote

AUTO_ANSWER_COUNTS = "auto_answer_counts"
"""One document per address and clock hour: the automatic answers it got (count and ids)."""

CASE_COUNTER = "case_number"
CONVERSATION_COUNTER = "conversation"
FIRST_CASE_NUMBER = 10001
SEARCH_WINDOW = 1000
"""How many case numbers one page of a text search (subject, participant) looks through at
most: such a filter has no index, so a page reads a bounded range of numbers and says where
it stopped; the next page goes on below."""


@dataclass(frozen=True)
class CaseQuery:
    """A filter of the case list and where the page starts (below ``before``)."""

    subject: str | None = None
    """A piece of the subject, any case."""
    participant: str | None = None
    """An address that wrote to, or was written to in, the case."""
    since: datetime | None = None
    until: datetime | None = None
    before: int | None = None
    """The number of the last case of the previous page."""

    @property
    def searches(self) -> bool:
        """Whether the filter looks through text (bounded by :data:`SEARCH_WINDOW`)."""
        return bool(self.subject or self.participant)


@dataclass(frozen=True)
class CasePage:
    """A page of cases, newest first; ``next`` is the ``before`` of the next page (None: no
    more); ``searched_to`` the lowest number a text search looked at (None: no search)."""

    cases: list[Case] = field(default_factory=list)
    next: int | None = None
    searched_to: int | None = None


@dataclass(frozen=True)
class ThreadMessage:
    """What lookups by Message-ID need of a stored message (no contents)."""

    FIELDS: ClassVar[tuple[str, ...]] = (
        "message_id", "case_number", "raw_id", "account", "direction", "content_digest",
        "created_at",
    )  # fmt: skip

    message_id: str
    case_number: int
    raw_id: str | None
    account: str | None
    direction: str
    content_digest: str | None
    created_at: datetime

    @classmethod
    def of(cls, doc: Doc) -> ThreadMessage:
        """From a ``messages`` document read with :attr:`FIELDS`."""
        return cls(
            message_id=str(doc["message_id"]),
            case_number=int(doc["case_number"]),
            raw_id=doc.get("raw_id"),
            account=doc.get("account"),
            direction=str(doc.get("direction")),
            content_digest=doc.get("content_digest"),
            created_at=doc["created_at"],
        )


class CaseRepo(Repo):
    """``cases`` and ``messages``, and the bytes of their attachments (``attachments``)."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._db = db
        self._cases = db["cases"]
        self._messages = db["messages"]
        self.attachments = AttachmentRepo(db)
        # What each mail the processor takes reads and writes here, sent together with the
        # same of the other mails in progress (shared.store._batch).
        self._numbers: Batcher[None, int] = Batcher(self._take_numbers)
        self._case_writes = Writes(self._cases)
        self._message_writes = Writes(self._messages)
        self._threads = Lookups(self._messages, "message_id", {f: 1 for f in ThreadMessage.FIELDS})
        self._counts = db[AUTO_ANSWER_COUNTS]
        self._count_writes = Writes(self._counts)
        self._count_reads = Lookups(self._counts, "_id", {"count": 1})

    async def get(self, *, number: int) -> Case | None:
        """A case by number."""
        doc = await self._cases.find_one({"number": number}, {"_id": 0})
        return Case.model_validate(doc) if doc else None

    async def create_for_raw(
        self,
        *,
        raw_id: str,
        subject: str,
        contact: MailAddress | None,
        first_attempt: bool = False,
    ) -> tuple[Case, bool]:
        """The case opened by raw mail ``raw_id``, creating it once.

        A crash after creating the case and before finishing the mail leads to a redelivery;
        the unique ``origin_raw_id`` then returns the same case instead of a second one.
        ``first_attempt`` says no earlier attempt at the mail can have created its case: the
        lookup before the insert is skipped (the unique index still finds a case that exists
        after all, at the price of an unused case number).
        """
        if not first_attempt:
            existing = await self._cases.find_one({"origin_raw_id": raw_id}, {"_id": 0})
            if existing:
                return Case.model_validate(existing), False
        number = await self._numbers.submit(None)
        case = Case(number=number, subject=subject, contact=contact, origin_raw_id=raw_id)
        try:
            await self._case_writes.write(InsertOne(case.model_dump()))
        except DuplicateKeyError:
            existing = await self._cases.find_one({"origin_raw_id": raw_id}, {"_id": 0})
            if existing is None:
                raise
            return Case.model_validate(existing), False
        return case, True

    async def _take_numbers(self, calls: list[None]) -> list[int]:
        """Case numbers for the cases being opened at this moment, in the order asked."""
        first = await next_sequence(
            self._db, CASE_COUNTER, start=FIRST_CASE_NUMBER, count=len(calls)
        )
        return list(range(first, first + len(calls)))

    async def add_message(
        self, *, message: CaseMessage, touch_case: bool = True, copy: CopyNote | None = None
    ) -> bool:
        """Attach a mail to its case; False when it was attached before (a redelivery).

        ``touch_case=False`` leaves the case's ``updated_at`` alone: for a case created for
        this very mail a moment ago it already says now. ``copy``: where an incoming mail came
        from, written with it (one insert rather than an insert and an update).
        """
        doc = message.model_dump(by_alias=True)
        if copy is not None:
            doc.update(copy.fields())
        try:
            await self._message_writes.write(InsertOne(doc))
        except DuplicateKeyError:
            return False
        if touch_case:
            await self._case_writes.write(
                UpdateOne({"number": message.case_number}, {"$set": {"updated_at": utcnow()}})
            )
        return True

    async def incoming_account(self, *, number: int, in_reply_to: str | None) -> str | None:
        """The account the case's mail came in on: that of the mail answered (``in_reply_to``)
        when it is the case's, else of the case's newest incoming mail; None for a case
        without fetched mail."""
        query: dict[str, Any] = {"case_number": number, "direction": "in", "raw_id": {"$ne": None}}
        doc = None
        if in_reply_to:
            doc = await self._messages.find_one({**query, "message_id": in_reply_to}, {"raw_id": 1})
        if doc is None:
            doc = await self._messages.find_one(query, {"raw_id": 1}, sort=[("created_at", -1)])
        if doc is None:
            return None
        raw = await self._db["raw_emails"].find_one({"_id": doc["raw_id"]}, {"account": 1})
        return str(raw["account"]) if raw else None

    async def case_of_message_ids(self, *, message_ids: list[str]) -> int | None:
        """The case that holds any of these Message-IDs (the most recent one wins;
        :func:`latest_case` is the same rule over messages read already)."""
        if not message_ids:
            return None
        cursor = (
            self._messages.find({"message_id": {"$in": message_ids}}, {"case_number": 1})
            .sort("created_at", -1)
            .limit(1)
        )
        async for doc in cursor:
            return int(doc["case_number"])
        return None

    async def messages_with_ids(
        self, *, message_ids: list[str], limit: int
    ) -> list[ThreadMessage] | None:
        """The stored messages bearing any of these Message-IDs, without their contents, in
        one read; None when there are more than ``limit`` (the caller asks precisely)."""
        found = await self._threads.find(message_ids, limit=limit)
        return None if found is None else [ThreadMessage.of(doc) for doc in found]

    async def outgoing_of(self, *, outbox_ids: list[str]) -> tuple[int, str | None] | None:
        """The case and Message-ID of our outgoing mail with any of these outbox ids."""
        if not outbox_ids:
            return None
        doc = await self._messages.find_one(
            {"outbox_id": {"$in": outbox_ids}, "direction": "out"},
            {"case_number": 1, "message_id": 1},
        )
        return (int(doc["case_number"]), doc.get("message_id")) if doc else None

    async def case_of_conversation(self, *, conversation_id: str) -> int | None:
        """The case a rendered conversation reference belongs to."""
        doc = await self._cases.find_one({"conversation_id": conversation_id}, {"number": 1})
        return int(doc["number"]) if doc else None

    async def ensure_conversation(self, *, number: int, render: Callable[[int], str]) -> str:
        """The case's conversation reference, given once from a counter and kept."""
        case = await self.get(number=number)
        if case is None:
            raise NotFound(f"no case {number}")
        if case.conversation_id:
            return case.conversation_id
        reference = render(await next_sequence(self._db, CONVERSATION_COUNTER))
        await self._cases.update_one(
            {"number": number, "conversation_id": None}, {"$set": {"conversation_id": reference}}
        )
        stored = await self.get(number=number)
        assert stored is not None and stored.conversation_id is not None
        return stored.conversation_id

    async def participants(self, *, number: int) -> set[str]:
        """Lower-case addresses of everyone who wrote to, or was written to in, the case."""
        found: set[str] = set()
        case = await self.get(number=number)
        if case and case.contact:
            found.add(str(case.contact.address).lower())
        async for doc in self._messages.find(
            {"case_number": number}, {"from": 1, "to": 1, "cc": 1}
        ):
            for key in ("from", "to", "cc"):
                found.update(str(a.get("address", "")).lower() for a in doc.get(key) or [])
        return found

    async def record_automatic_answer(self, *, answer_id: str, address: str) -> None:
        """Count one automatic answer to ``address`` in this hour's counter (once per answer
        id: a redelivered mail counts its answer again without changing the count).

        One counter document per address and hour, raised in place (``$inc`` with upsert)
        and removed by a TTL index, instead of a document per answer counted by a query over
        them: that count was 28% of the database's time under load. An answer already in the
        counter matches no document, and the upsert then collides with the counter itself.
        """
        key, hour = _answer_counter(address, utcnow())
        for _ in range(2):
            try:
                await self._count_writes.write(
                    UpdateOne(
                        {"_id": key, "answers": {"$ne": answer_id}},
                        {
                            "$inc": {"count": 1},
                            "$push": {"answers": answer_id},
                            "$setOnInsert": {"expires_at": hour + timedelta(hours=2)},
                        },
                        upsert=True,
                    )
                )
                return
            except DuplicateKeyError:
                # Counted before, or another answer created the counter at the same moment:
                # once more, which counts this answer in the counter that exists now (an
                # answer counted before collides both times, and there is nothing to count).
                continue

    async def automatic_answers_this_hour(self, *, address: str) -> int:
        """How many automatic answers went to ``address`` in the current clock hour."""
        key, _ = _answer_counter(address, utcnow())
        doc = await self._count_reads.one(key)
        return int(doc["count"]) if doc else 0

    async def mark_bounced(self, *, message_id: str, bounce: dict[str, Any]) -> None:
        """Record a bounce on our outgoing mail with this Message-ID."""
        await self._messages.update_many(
            {"message_id": message_id, "direction": "out"},
            {"$set": {"bounce": bounce, "bounced_at": utcnow()}},
        )

    async def messages(self, *, case_number: int) -> list[CaseMessage]:
        """The mails of a case, oldest first."""
        cursor = self._messages.find({"case_number": case_number}, {"_id": 0}).sort("created_at", 1)
        return [CaseMessage.model_validate(d) async for d in cursor]

    async def sent_message(self, *, outbox_id: str) -> CaseMessage | None:
        """Our outgoing mail ``outbox_id`` as recorded on its case (with bounce, complaint)."""
        doc = await self._messages.find_one({"outbox_id": outbox_id}, {"_id": 0})
        return CaseMessage.model_validate(doc) if doc else None

    async def attachment(self, *, case_number: int, raw_id: str, index: int) -> Attachment:
        """Attachment ``index`` (from 0) of the incoming mail ``raw_id`` of a case."""
        doc = await self._messages.find_one(
            {"case_number": case_number, "raw_id": raw_id}, {"attachments": 1}
        )
        if doc is None:
            raise NotFound(f"case {case_number} has no mail {raw_id}")
        attachments = doc.get("attachments") or []
        if not 0 <= index < len(attachments):
            raise NotFound(f"mail {raw_id} of case {case_number} has no attachment {index}")
        return Attachment.model_validate(attachments[index])

    async def recent(self, *, limit: int = 100) -> list[Case]:
        """The newest cases first."""
        cursor = self._cases.find({}, {"_id": 0}).sort("number", -1).limit(limit)
        return [Case.model_validate(d) async for d in cursor]

    async def page(self, *, query: CaseQuery, limit: int) -> CasePage:
        """Up to ``limit`` cases matching ``query``, newest (highest number) first.

        Every read is a window of case numbers with both bounds and nothing else in the query
        (the local stand-in's planner scans the collection for anything else, and sorts
        whatever a query matches); the filters are applied while reading. Cases are numbered
        in the order they are opened, so the date range is a range of numbers, found by
        bisection. A text search (subject, participant) reads at most
        :data:`SEARCH_WINDOW` numbers per page and says where it stopped.
        """
        newest = await self._newest()
        high = min(query.before or newest + 1, newest + 1)
        if query.until is not None:
            high = min(high, await self._first_at(query.until))
        low = await self._first_at(query.since) if query.since else FIRST_CASE_NUMBER
        found: list[Case] = []
        span = limit + 10 if not query.searches else SEARCH_WINDOW // 4
        stop = max(low, high - SEARCH_WINDOW) if query.searches else low
        while high > stop and len(found) < limit:
            lo = max(stop, high - span)
            found += await self._window(query, lo, high)
            high = lo
            span = min(span * 2, SEARCH_WINDOW)
        found.sort(key=lambda c: c.number, reverse=True)
        if len(found) > limit:
            found = found[:limit]
            return CasePage(found, found[-1].number, None)
        more = high > low
        return CasePage(found, high if more else None, high if more and query.searches else None)

    async def _window(self, query: CaseQuery, lo: int, hi: int) -> list[Case]:
        """The cases numbered in [lo, hi) that match ``query``."""
        numbers: Doc = {"$gte": lo, "$lt": hi}
        if query.participant:
            # Their mails first: few cases are left to read.
            found = await self._with_participant(query.participant, lo, hi)
            if not found:
                return []
            numbers = {"$in": sorted(found)}
        piece = query.subject.casefold() if query.subject else ""
        # The subject is checked on the raw document: validating every case read would cost
        # more than reading it.
        return [
            Case.model_validate(d)
            async for d in self._cases.find({"number": numbers}, {"_id": 0})
            if piece in str(d.get("subject", "")).casefold()
        ]

    async def _newest(self) -> int:
        """The highest case number given (its case may be a moment from being stored)."""
        doc = await self._db["counters"].find_one({"_id": CASE_COUNTER})
        return int(doc["seq"]) + FIRST_CASE_NUMBER - 1 if doc else FIRST_CASE_NUMBER - 1

    async def _first_at(self, at: datetime) -> int:
        """The first case number opened at or after ``at`` (bisection over the numbers,
        a few point reads; an unused number reads as opened later)."""
        lo, hi = FIRST_CASE_NUMBER, await self._newest() + 1
        while lo < hi:
            mid = (lo + hi) // 2
            doc = await self._cases.find_one({"number": mid}, {"created_at": 1})
            if doc is not None and doc["created_at"] < at:
                lo = mid + 1
            else:
                hi = mid
        return lo

    async def _with_participant(self, address: str, low: int, high: int) -> set[int]:
        """Numbers in [low, high) of cases with a mail from, to or copied to ``address``
        (any case: addresses are kept as written)."""
        wanted = address.casefold()
        cursor = self._messages.find(
            {"case_number": {"$gte": low, "$lt": high}},
            {"case_number": 1, "from.address": 1, "to.address": 1, "cc.address": 1, "_id": 0},
        )
        return {
            int(d["case_number"])
            async for d in cursor
            if any(
                str(a.get("address", "")).casefold() == wanted
                for key in ("from", "to", "cc")
                for a in d.get(key) or []
            )
        }

    async def case_of_raw(self, *, raw_id: str) -> int | None:
        """The case the incoming mail ``raw_id`` went to (opened or followed up), if any."""
        doc = await self._messages.find_one({"raw_id": raw_id}, {"case_number": 1})
        return int(doc["case_number"]) if doc else None


def _answer_counter(address: str, at: datetime) -> tuple[str, datetime]:
    """The counter key of ``address`` for the clock hour of ``at``, and that hour."""
    hour = at.replace(minute=0, second=0, microsecond=0)
    return f"{address.lower()}|{hour:%Y-%m-%dT%H}", hour


def latest_case(messages: Iterable[ThreadMessage]) -> int | None:
    """:meth:`CaseRepo.case_of_message_ids` over messages already read with those ids."""
    latest = max(messages, key=lambda m: m.created_at, default=None)
    return latest.case_number if latest else None
