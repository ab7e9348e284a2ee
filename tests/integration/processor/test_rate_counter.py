"""The rate limiter's counter: one document per address and hour, counted once per answer."""

from __future__ import annotations

import asyncio

from shared.runtime import Runtime
from shared.store.cases import AUTO_ANSWER_COUNTS


async def test_each_answer_counts_once_even_when_recorded_again(rt: Runtime) -> None:
    cases = rt.store.cases
    # Two mails' acknowledgements at once, and the first one's redelivery recording it again.
    await asyncio.gather(
        cases.record_automatic_answer(answer_id="ack-1", address="Eve@Example.org"),
        cases.record_automatic_answer(answer_id="ack-2", address="eve@example.org"),
    )
    await cases.record_automatic_answer(answer_id="ack-1", address="eve@example.org")
    assert await cases.automatic_answers_this_hour(address="EVE@example.org") == 2
    assert await cases.automatic_answers_this_hour(address="bob@example.org") == 0
    counters = await rt.store.db[AUTO_ANSWER_COUNTS].find({}).to_list()
    assert len(counters) == 1  # one per address and hour, removed by its TTL index
    indexes = await rt.store.db[AUTO_ANSWER_COUNTS].index_information()
    assert any(i.get("expireAfterSeconds") == 0 for i in indexes.values())
