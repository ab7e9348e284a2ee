"""A MongoDB outage is not the mail's fault: the processor retries the mail until MongoDB is
back, and the failed-mail desk never sees it (issue 14, defect 1)."""

from __future__ import annotations

from shared.broker import publish
from shared.runtime import Runtime
from shared.service import Stack
from shared.topology import MAIL_RECEIVED, RETRY_TIERS, retry_queue
from tests.integration.processor.helpers import store_raw
from tests.outage import gate_for, processor_behind
from tests.support import eventually, make_mail


async def test_a_mail_that_meets_a_mongodb_outage_is_retried_not_failed(
    rt: Runtime, config_stack: Stack, rabbit_url: str, mongo_url: str, mongo_db_name: str
) -> None:
    data, _ = make_mail(subject="During the outage", sender="patient@example.org")
    msg = await store_raw(rt, data, "1:1")
    async with gate_for(mongo_url) as gate:
        processor = processor_behind(
            gate,
            rabbit_url=rabbit_url,
            mongo_url=mongo_url,
            database=mongo_db_name,
            instance="outage",
        )
        await processor.start()
        try:
            await gate.cut()
            await publish(rt.broker, msg, routing_key=MAIL_RECEIVED)
            retry = await rt.broker.declare_queue(retry_queue(MAIL_RECEIVED, RETRY_TIERS[0]))

            async def parked() -> bool:
                declared = await retry.declare()
                return bool(declared.message_count)

            await eventually(parked, timeout=60, what="the mail parked for a retry")
            await gate.restore()

            async def processed() -> bool:
                return (await rt.store.raw_emails.get(raw_id=msg.raw_id)).status == "processed"

            await eventually(processed, timeout=60, what="the mail processed after the outage")
        finally:
            await gate.restore()
            await processor.stop()
    raw = await rt.store.raw_emails.get(raw_id=msg.raw_id)
    assert raw.case_number is not None and raw.error is None
    assert await config_stack.rt.store.desk.search() == []
