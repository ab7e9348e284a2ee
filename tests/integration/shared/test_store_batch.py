"""Group commit against the MongoDB stand-in: many mails' writes and reads in one command
each, with every caller getting exactly what its own single command would have given."""

from __future__ import annotations

import asyncio

import pytest
from pymongo import InsertOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.store._base import Doc
from shared.store._batch import Lookups, Writes
from tests.round_trips import counting

pytestmark = pytest.mark.integration


async def test_writes_go_together_and_a_duplicate_fails_only_its_own_caller(
    mongo_db: AsyncDatabase[Doc],
) -> None:
    coll = mongo_db["batch_writes"]
    await coll.insert_one({"_id": "taken", "n": 0})
    writes = Writes(coll)
    with counting() as counted:
        results = await asyncio.gather(
            writes.write(InsertOne({"_id": "a"})),
            writes.write(InsertOne({"_id": "taken"})),
            writes.write(InsertOne({"_id": "b"})),
            writes.write(UpdateOne({"_id": "taken"}, {"$inc": {"n": 1}})),
            return_exceptions=True,
        )
    assert results[0] is None and results[2] is None and results[3] is None
    assert isinstance(results[1], DuplicateKeyError)
    assert sorted([d["_id"] async for d in coll.find({})]) == ["a", "b", "taken"]
    assert (await coll.find_one({"_id": "taken"}) or {})["n"] == 1
    # The first write went alone; the three made meanwhile in one insert and one update.
    assert counted.command_count <= 3


async def test_lookups_read_together_and_answer_each_caller_with_its_own(
    mongo_db: AsyncDatabase[Doc],
) -> None:
    coll = mongo_db["batch_reads"]
    await coll.insert_many([{"k": k, "i": i} for k in "abc" for i in range(3)] + [{"k": "d"}])
    lookups = Lookups(coll, "k", {"_id": 0})
    with counting() as counted:
        a, bc, d, none, cut = await asyncio.gather(
            lookups.find(["a"]),
            lookups.find(["b", "c"]),
            lookups.find(["d"], limit=1),
            lookups.find(["zz"]),
            lookups.find(["a"], limit=2),
        )
    assert a is not None and {(x["k"], x["i"]) for x in a} == {("a", i) for i in range(3)}
    assert bc is not None and sorted(x["k"] for x in bc) == ["b"] * 3 + ["c"] * 3
    assert d == [{"k": "d"}] and none == []
    assert cut is None  # more than its limit, as a read with that limit shows it
    assert counted.command_count <= 2
    assert await lookups.one("d") == {"k": "d"}
