"""The outbox's group commit on a real MongoDB: the claims and outcomes of mails in flight
at once share one bulk write, each caller gets its own result, and a redelivered mail's claim
finds the entry as stored."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from pymongo import AsyncMongoClient, monitoring

from services.sender import outcome
from shared.models.records import OutboxEntry
from shared.store import Store, open_store
from shared.store.outbox import OutboxBatcher

pytestmark = pytest.mark.integration


class Commands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.names: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.names[event.command_name] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
async def store(mongo_url: str, mongo_db_name: str) -> AsyncIterator[Store]:
    opened = await open_store(mongo_url, mongo_db_name)
    yield opened
    await opened.close()


def entry(n: int) -> OutboxEntry:
    return OutboxEntry(
        id=f"batch-{n}",
        case_number=None,
        message_id=f"<batch-{n}@example.com>",
        kind="notification",
        to=[{"address": "carol@example.org"}],
        subject="Batched",
        recipients=outcome.initial_recipients(["carol@example.org"]),
    )


async def test_writes_of_mails_in_flight_share_one_bulk_write(
    mongo_url: str, mongo_db_name: str
) -> None:
    commands = Commands()
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        mongo_url, event_listeners=[commands], tz_aware=True
    )
    try:
        store = Store(client, mongo_db_name)
        batcher = OutboxBatcher(store.outbox, batch_size=64)
        commands.names.clear()
        claimed = await asyncio.gather(*(batcher.claim(entry=entry(n)) for n in range(20)))
        assert [c.id for c in claimed] == [f"batch-{n}" for n in range(20)]
        assert all(c.attempts == 1 for c in claimed)
        await asyncio.gather(*(batcher.claim_send(mail_id=c.id) for c in claimed))
        sent = [
            outcome.apply_error(c.recipients, "deferred", "451 later", now=c.created_at)
            for c in claimed
        ]
        await asyncio.gather(
            *(
                batcher.record(entry=c, status="queued", recipients=r)
                for c, r in zip(claimed, sent, strict=True)
            )
        )
        # 20 claims in one bulk write, 20 outcomes in another, each a single "update"
        # command; the send claims are written one by one (a connection waits for each).
        assert commands.names == Counter({"update": 2 + 20})

        # A redelivery: the claim finds the stored entry (its attempt counted, its states).
        commands.names.clear()
        again = await asyncio.gather(batcher.claim(entry=entry(0)), batcher.claim(entry=entry(1)))
        assert [a.attempts for a in again] == [2, 2]
        assert [a.recipients[0].state for a in again] == ["deferred", "deferred"]
        assert all(a.sending_since is not None for a in again)
        assert commands.names == Counter({"update": 1, "find": 1})
    finally:
        await client.close()


async def test_batches_hold_at_most_batch_size_writes(store: Store) -> None:
    batcher = OutboxBatcher(store.outbox, batch_size=3)
    claimed = await asyncio.gather(*(batcher.claim(entry=entry(n)) for n in range(7)))
    assert len({c.id for c in claimed}) == 7
    assert await store.db["outbox"].count_documents({}) == 7
