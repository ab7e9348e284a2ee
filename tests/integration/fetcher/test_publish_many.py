"""publish_many on the real broker: the messages publish() would send, confirmed together,
and a message nobody could receive is an error, not a silent loss."""

from __future__ import annotations

import aiormq
import pytest
from aio_pika import DeliveryMode

from shared.broker import publish_many
from shared.models.messages import MailReceived
from shared.runtime import Runtime
from shared.topology import MAIL_RECEIVED, PROCESSOR_INBOUND


def received(n: int) -> MailReceived:
    return MailReceived(
        raw_id=f"raw-{n}", account="bob", source_key=f"1:{n}", correlation_id=f"corr-{n}"
    )


async def test_messages_arrive_in_order_persistent_json_with_their_correlation_ids(
    rt: Runtime,
) -> None:
    sent = [received(n) for n in range(3)]
    await publish_many(rt.broker, sent, routing_key=MAIL_RECEIVED)
    queue = await rt.broker.declare_queue(PROCESSOR_INBOUND)
    arrived = []
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        arrived.append(message)
    assert [MailReceived.model_validate_json(m.body) for m in arrived] == sent
    assert {m.delivery_mode for m in arrived} == {DeliveryMode.PERSISTENT}
    assert {m.content_type for m in arrived} == {"application/json"}
    assert [m.correlation_id for m in arrived] == ["corr-0", "corr-1", "corr-2"]
    assert len({m.message_id for m in arrived}) == 3


async def test_an_unroutable_message_raises(rt: Runtime) -> None:
    with pytest.raises(aiormq.exceptions.PublishError):
        await publish_many(rt.broker, [received(1)], routing_key="nobody.listens.here")
