"""A poison mail — one that kills its consumer before the consumer can acknowledge or reject
it — is dead-lettered to the desk after the queue's delivery limit instead of looping."""

from __future__ import annotations

import aio_pika

from shared.broker import publish
from shared.models.records import FailedMail
from shared.runtime import Runtime
from shared.service import Stack
from shared.topology import DELIVERY_LIMIT, MAIL_RECEIVED, PROCESSOR_INBOUND
from tests.integration.processor.helpers import store_raw
from tests.support import eventually, make_mail


async def take_and_die(rabbit_url: str) -> bool:
    """Take the next message off processor.inbound and die holding it, as a consumer killed
    mid-mail does (its connection closes with the message unacknowledged); False when the
    queue had none."""
    connection = await aio_pika.connect(rabbit_url)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(PROCESSOR_INBOUND.name, ensure=False)
        return await queue.get(no_ack=False, fail=False) is not None
    finally:
        await connection.close()


async def test_a_mail_that_kills_every_consumer_reaches_the_desk(
    rt: Runtime, config_stack: Stack, rabbit_url: str
) -> None:
    await rt.broker.declare_queue(PROCESSOR_INBOUND)  # as the processor declares it
    data, _ = make_mail(subject="Killer", sender="poison@example.org")
    msg = await store_raw(rt, data, "1:1")
    await publish(rt.broker, msg, routing_key=MAIL_RECEIVED)
    deliveries = 0

    async def on_desk() -> FailedMail | None:
        # The queue takes a returned message back a moment after the connection closed, so
        # "no message" alone proves nothing: keep killing consumers until the desk has it.
        nonlocal deliveries
        deliveries += int(await take_and_die(rabbit_url))
        assert deliveries <= DELIVERY_LIMIT + 1, "the mail keeps coming back"
        found = await rt.store.desk.search()
        return found[0] if found else None

    entry = await eventually(on_desk, what="the poison mail on the desk")
    assert entry.ref == msg.raw_id and entry.sender and "poison@example.org" in entry.sender
    assert "delivery limit" in entry.error
    assert DELIVERY_LIMIT <= deliveries <= DELIVERY_LIMIT + 1  # every chance first, no more
