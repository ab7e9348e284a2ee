"""After crashes, the processor tells the mail that crashed it from the mails that were only
near it: the poison goes to the desk with that reason, the others are processed (issue 14,
defect 5)."""

from __future__ import annotations

from services.processor.handlers import CRASHED
from services.processor.service import build as processor_service
from services.processor.suspects import MAX_SOLO_CRASHES
from shared.broker import publish
from shared.runtime import Runtime
from shared.service import Stack
from shared.topology import MAIL_RECEIVED, PROCESSOR_INBOUND
from tests.integration.processor.helpers import store_raw
from tests.integration.processor.test_poison import take_and_die
from tests.support import eventually, make_mail, server_settings


async def test_the_mail_that_crashed_alone_goes_to_the_desk_its_neighbour_is_processed(
    rt: Runtime, config_stack: Stack, rabbit_url: str, mongo_url: str, mongo_db_name: str
) -> None:
    await rt.broker.declare_queue(PROCESSOR_INBOUND)
    poison = await store_raw(rt, make_mail(subject="Crashes", sender="p@example.org")[0], "1:1")
    neighbour = await store_raw(rt, make_mail(subject="Nearby", sender="n@example.org")[0], "1:2")
    # What crashed processors leave: both were started; the poison then crashed alone.
    await rt.store.db["raw_emails"].update_one(
        {"_id": poison.raw_id}, {"$set": {"unfinished": 4, "solo_runs": MAX_SOLO_CRASHES}}
    )
    await rt.store.db["raw_emails"].update_one(
        {"_id": neighbour.raw_id}, {"$set": {"unfinished": 1}}
    )
    for msg in (poison, neighbour):
        await publish(rt.broker, msg, routing_key=MAIL_RECEIVED)
    taken = 0
    while taken < 2:  # a consumer dies holding each: both come back redelivered
        taken += int(await take_and_die(rabbit_url))
    processor = Stack(
        [processor_service],
        server_settings(
            rabbit_url=rabbit_url, mongo_url=mongo_url, database=mongo_db_name, instance="crash"
        ),
    )
    await processor.start()
    try:

        async def processed() -> bool:
            raw = await rt.store.raw_emails.get(raw_id=neighbour.raw_id)
            return raw.status == "processed"

        await eventually(processed, what="the neighbour processed")
        [entry] = await eventually(config_stack.rt.store.desk.search, what="the poison on the desk")
    finally:
        await processor.stop()
    assert entry.ref == poison.raw_id and entry.error == CRASHED
    done = await rt.store.raw_emails.get(raw_id=neighbour.raw_id)
    assert done.unfinished == 0 and done.case_number is not None
