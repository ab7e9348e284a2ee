"""Case numbers come from one counter in MongoDB: the first takes of a new counter race to
create it, and every take must still get its own number (the chaos run's first mail went to
the desk when the stand-in answered the losing upsert with no document)."""

from __future__ import annotations

import asyncio

import pytest
from pymongo import AsyncMongoClient

from shared.store._base import next_sequence

pytestmark = pytest.mark.integration


async def test_concurrent_first_takes_of_a_new_counter_each_get_their_own_number(
    mongo_url: str, mongo_db_name: str
) -> None:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongo_url)
    try:
        db = client[mongo_db_name]
        for round_ in range(30):
            name = f"race-{round_}"
            numbers = await asyncio.gather(*(next_sequence(db, name, start=100) for _ in range(12)))
            # A lost race may burn a number (a gap, as in any sequence), never repeat one.
            assert len(set(numbers)) == len(numbers) and min(numbers) >= 100
    finally:
        await client.close()
