"""Case numbers come from one counter in MongoDB: the first takes of a new counter race to
create it, and every take must still get its own number (the chaos run's first mail went to
the desk when the stand-in answered the losing upsert with no document)."""

from __future__ import annotations

import asyncio

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from shared.store._base import Doc, next_sequence

pytestmark = pytest.mark.integration


async def test_concurrent_first_takes_of_a_new_counter_each_get_their_own_number(
    mongo_db: AsyncDatabase[Doc],
) -> None:
    for round_ in range(30):
        name = f"race-{round_}"
        numbers = await asyncio.gather(
            *(next_sequence(mongo_db, name, start=100) for _ in range(12))
        )
        # A lost race may burn a number (a gap, as in any sequence), never repeat one.
        assert len(set(numbers)) == len(numbers) and min(numbers) >= 100


async def test_a_take_of_several_numbers_returns_the_first_and_the_next_take_follows(
    mongo_db: AsyncDatabase[Doc],
) -> None:
    # Case numbers for the mails opening cases at one moment are taken in one command.
    assert await next_sequence(mongo_db, "block", start=10001, count=5) == 10001
    assert await next_sequence(mongo_db, "block", start=10001) == 10006
    assert await next_sequence(mongo_db, "block", start=10001, count=3) == 10007
