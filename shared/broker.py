"""RabbitMQ: the broker object, declaring the topology, and publishing with confirms."""

from __future__ import annotations

import logging

from faststream.rabbit import Channel, RabbitBroker
from pydantic import BaseModel

from shared.topology import (
    ACCOUNT_FAILING,
    CONFIG_EXCHANGE,
    DEAD_LETTER_QUEUES,
    DLX_EXCHANGE,
    MAIL_EXCHANGE,
    RETRY_EXCHANGE,
    RETRY_TIERS,
    SENDER_ACCOUNT_FAILING,
    WORK_QUEUES,
    retry_queue,
)

log = logging.getLogger(__name__)


def build_broker(url: str) -> RabbitBroker:
    """A broker whose publishes wait for the broker's confirm and fail when unroutable."""
    return RabbitBroker(
        url,
        default_channel=Channel(publisher_confirms=True, on_return_raises=True),
        graceful_timeout=15.0,
        logger=logging.getLogger("mailroom.broker"),
    )


async def declare_topology(broker: RabbitBroker) -> None:
    """Declare every exchange, queue and binding, so no publish is unroutable.

    Every service calls this at start: a mail published before its consumer ever ran
    still lands in a durable queue.
    """
    mail = await broker.declare_exchange(MAIL_EXCHANGE)
    dlx = await broker.declare_exchange(DLX_EXCHANGE)
    retry = await broker.declare_exchange(RETRY_EXCHANGE)
    await broker.declare_exchange(CONFIG_EXCHANGE)
    for routing_key, queue in WORK_QUEUES.items():
        declared = await broker.declare_queue(queue)
        await declared.bind(mail, routing_key)
        dead = await broker.declare_queue(DEAD_LETTER_QUEUES[routing_key])
        await dead.bind(dlx, routing_key)
        for delay in RETRY_TIERS:
            tier = retry_queue(routing_key, delay)
            waiting = await broker.declare_queue(tier)
            await waiting.bind(retry, tier.routing_key)
    # Failing-account notices must be routable (publishes are mandatory) before the sender
    # ever ran; it consumes them from this queue.
    failing = await broker.declare_queue(SENDER_ACCOUNT_FAILING)
    await failing.bind(mail, ACCOUNT_FAILING)


async def publish(
    broker: RabbitBroker, message: BaseModel, *, routing_key: str, mandatory: bool = True
) -> None:
    """Publish a persistent message on ``mail`` and wait for the broker's confirm."""
    await broker.publish(
        message,
        exchange=MAIL_EXCHANGE,
        routing_key=routing_key,
        persist=True,
        mandatory=mandatory,
        correlation_id=getattr(message, "correlation_id", None),
    )
