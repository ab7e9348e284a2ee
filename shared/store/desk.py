"""The failed-mail desk: dead-lettered messages, their reasons, and replay audits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from shared.errors import NotFound
from shared.models.desk import ONE_MS, DeskCursor, DeskFilter
from shared.models.messages import utcnow
from shared.models.records import FailedMail, ReplayRecord
from shared.store._base import Doc
from shared.store._errors import Repo

FIRST_SPAN = timedelta(seconds=1)
"""The first window of failure times a page reads, then widened by what it finds: small,
because an outage can put thousands of failures into a minute; empty stretches cost a
millisecond per read."""
MAX_GROWTH = 8
"""A window grows (or shrinks) at most this many times from one read to the next: through
empty months in a few reads, without jumping from a quiet hour into a whole burst."""
TEXT_WINDOW = 500
"""With a text filter the share of matches is unknown: windows aim at this many entries."""
SCAN_LIMIT = 1000
"""A page with a text filter reads at most about this many entries (then says how far back
it searched): every page stays bounded, however rare the matches."""
_LATEST = datetime(9999, 1, 1, tzinfo=UTC)
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class DeskPage:
    """One page of desk entries and where the next one starts (None: this is the last).

    ``searched_to`` is set when a text-filtered page stopped early: the entries failed at
    or after it were searched, the older ones were not (``next`` goes on from there)."""

    entries: list[FailedMail]
    next: DeskCursor | None
    searched_to: datetime | None = None


def _key(entry: FailedMail) -> tuple[datetime, str]:
    return (entry.last_failed_at, entry.id)


def _next_span(span: timedelta, read: int, wanted: int, by_text: bool) -> timedelta:
    """The next window: as wide as the density just read says ``wanted`` entries need."""
    if read == 0:
        return span * MAX_GROWTH
    aim = TEXT_WINDOW if by_text else wanted * 1.25
    factor = min(max(aim / read, 1 / MAX_GROWTH), MAX_GROWTH)
    return max(span * factor, ONE_MS)


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

    async def page(
        self, *, filter: DeskFilter, after: DeskCursor | None = None, limit: int = 50
    ) -> DeskPage:
        """Up to ``limit`` entries matching ``filter`` after ``after``, most recent failure
        first, and where the next page starts.

        Keyset paging by bounded range reads: MongoDB reads a window of failure times on the
        ([account,] status, last_failed_at) index (a window with both bounds, no other
        field in the query: the local stand-in's planner scans the collection for anything
        else, and sorts everything a query matches), and Python applies the text filters and
        the order. The window starts small at the cursor and widens by the density it finds,
        so a page costs about the same at the top and 100,000 entries down. With a text
        filter a page reads at most :data:`SCAN_LIMIT` entries: when they hold too few
        matches the page ends early, with ``searched_to`` and a cursor to search on.
        """
        top = after or DeskCursor.before(_LATEST)
        if filter.until is not None and filter.until + ONE_MS < top.at:
            top = DeskCursor.before(filter.until + ONE_MS)
        floor = filter.since or _EARLIEST
        now = utcnow()
        span, scanned, hi = FIRST_SPAN, 0, top
        found: list[FailedMail] = []
        while True:
            lo = max(floor, min(hi.at, now) - span)
            window = await self._window(filter, lo, hi.at)
            scanned += len(window)
            hi_key = hi.key()
            found += [e for e in window if _key(e) < hi_key and filter.matches(e)]
            if len(found) > limit:
                found.sort(key=_key, reverse=True)
                return DeskPage(found[:limit], DeskCursor.of(found[limit - 1]))
            hi = DeskCursor.before(lo)
            done = lo <= floor
            if done or (filter.by_text and scanned >= SCAN_LIMIT):
                found.sort(key=_key, reverse=True)
                return DeskPage(found, None if done else hi, None if done else lo)
            span = _next_span(span, len(window), limit + 1 - len(found), filter.by_text)

    async def _window(self, filter: DeskFilter, lo: datetime, hi: datetime) -> list[FailedMail]:
        entries: list[FailedMail] = []
        for status in filter.statuses:
            query: Doc = {"status": status, "last_failed_at": {"$gte": lo, "$lte": hi}}
            if filter.account:
                query["account"] = filter.account
            entries += [FailedMail.model_validate(d) async for d in self._failed.find(query)]
        return entries

    async def search(
        self, *, filter: DeskFilter | None = None, limit: int = 100
    ) -> list[FailedMail]:
        """The first ``limit`` entries matching ``filter`` (failed ones without a filter)."""
        return (await self.page(filter=filter or DeskFilter(), limit=limit)).entries

    async def count_matching(self, *, filter: DeskFilter) -> int:
        """How many entries match ``filter`` (MongoDB reads every entry of the status: for a
        confirmation, not for every page)."""
        total = 0
        for status in filter.statuses:
            query: Doc = {"status": status, **filter.text_query()}
            if filter.account:
                query["account"] = filter.account
            if filter.since or filter.until:
                query["last_failed_at"] = {
                    **({"$gte": filter.since} if filter.since else {}),
                    **({"$lte": filter.until} if filter.until else {}),
                }
            total += await self._failed.count_documents(query)
        return total

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
