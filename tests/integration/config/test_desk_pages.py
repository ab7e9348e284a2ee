"""The desk's keyset pages on the real MongoDB stand-in: whatever the filter, following the
pages gives exactly the matching entries, newest failure first, none twice, none missed, also
with bursts of equal failure times, entries on window bounds and long empty stretches."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

import shared.store.desk as desk_store
from shared.models.desk import DeskCursor, DeskFilter
from shared.models.records import FailedMail
from shared.service import Stack

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FILTERS = (
    DeskFilter(),
    DeskFilter(account="sales"),
    DeskFilter(status="all"),
    DeskFilter(status="replayed", account="support"),
    DeskFilter(sender="C7"),
    DeskFilter(error="rare", account="sales"),
    DeskFilter(since=T0 + timedelta(days=3), until=T0 + timedelta(days=9, minutes=1)),
)


def entries() -> list[FailedMail]:
    """400 entries: a burst of equal times, seconds apart, a day apart, months apart."""
    rng = random.Random(13)
    times = [T0 + timedelta(days=5)] * 40
    times += [T0 + timedelta(days=3, seconds=s) for s in range(120)]
    times += [T0 + timedelta(days=d, minutes=rng.randrange(1440)) for d in range(200)]
    times += [T0 + timedelta(days=400 + 30 * m) for m in range(40)]
    return [
        FailedMail.model_validate(
            {
                "_id": f"processor:{rng.randrange(10**6):06d}-{n}",
                "queue": "processor.failed",
                "routing_key": "mail.received",
                "ref": str(n),
                "body": {},
                "account": ("support", "sales")[n % 2],
                "sender": f"c{n % 10}@example.org",
                "error": "rare" if n % 17 == 0 else "common",
                "last_failed_at": at,
                "status": ("failed", "failed", "replayed", "deleted")[n % 4],
            }
        )
        for n, at in enumerate(times)
    ]


def expected(stored: list[FailedMail], filter: DeskFilter) -> list[str]:
    def passes(e: FailedMail) -> bool:
        in_time = (filter.since is None or e.last_failed_at >= filter.since) and (
            filter.until is None or e.last_failed_at <= filter.until
        )
        mine = filter.account is None or e.account == filter.account
        return e.status in filter.statuses and in_time and mine and filter.matches(e)

    chosen = sorted((e for e in stored if passes(e)), key=lambda e: (e.last_failed_at, e.id))
    return [e.id for e in reversed(chosen)]


@pytest.mark.parametrize("limit", [7, 50])
async def test_following_the_pages_lists_every_match_once_in_order(
    config_stack: Stack, limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(desk_store, "SCAN_LIMIT", 25)  # text-filtered pages end early too
    stored = entries()
    await config_stack.rt.store.db["failed_mails"].insert_many(
        [e.model_dump(by_alias=True) for e in stored]
    )
    for filter in FILTERS:
        listed: list[str] = []
        after: DeskCursor | None = None
        for _ in range(1000):
            page = await config_stack.rt.store.desk.page(filter=filter, after=after, limit=limit)
            assert len(page.entries) <= limit
            listed += [e.id for e in page.entries]
            if page.next is None:
                break
            after = DeskCursor.decode(page.next.encode())  # as a link carries it
        assert listed == expected(stored, filter), filter
        assert await config_stack.rt.store.desk.count_matching(filter=filter) == len(listed)
