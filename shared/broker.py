"""RabbitMQ: the broker object, declaring the topology, and publishing with confirms."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence

import aiormq
from aio_pika import DeliveryMode, Message
from faststream.exceptions import IncorrectState
from faststream.rabbit import Channel, RabbitBroker
from pydantic import BaseModel

from shared.topology import (
    ACCOUNT_FAILING,
    CASE_CREATED,
    CASE_UPDATED,
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

CASE_EVENT_KEYS = (CASE_CREATED, CASE_UPDATED)
"""Routing keys published without ``mandatory``: events for integrators, routed nowhere when
none listens."""


BROKER_AWAY: tuple[type[Exception], ...] = (
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
    TimeoutError,
    IncorrectState,
)
"""What a publish raises while RabbitMQ is away or its connection is being re-established
(a channel is restored a moment after the connection): an outage, not a bug."""


def mandatory(routing_key: str) -> bool:
    """Whether a publish under ``routing_key`` must reach a queue (every one but case events:
    a mail or command routed nowhere would be lost, so the broker refuses it)."""
    return routing_key not in CASE_EVENT_KEYS


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


async def publish(broker: RabbitBroker, message: BaseModel, *, routing_key: str) -> None:
    """Publish a persistent message on ``mail`` and wait for the broker's confirm
    (:func:`mandatory` says whether it must reach a queue)."""
    await broker.publish(
        message,
        exchange=MAIL_EXCHANGE,
        routing_key=routing_key,
        persist=True,
        mandatory=mandatory(routing_key),
        correlation_id=getattr(message, "correlation_id", None),
    )


async def publish_many(
    broker: RabbitBroker, messages: Sequence[BaseModel], *, routing_key: str
) -> None:
    """:func:`publish` for many messages under one routing key (see :func:`publish_batch`)."""
    await publish_batch(broker, [(message, routing_key) for message in messages])


async def publish_batch(
    broker: RabbitBroker,
    messages: Sequence[tuple[BaseModel, str]],
) -> None:
    """Publish ``(message, routing key)`` pairs on ``mail``: all are written at once, then
    their confirms are awaited together (one confirm round trip); raises the first failure
    (nack, unroutable, lost channel).

    FastStream's publish waits until each message has left the socket before the next one
    may go, an event-loop round and a write per message; for the fetcher's batches that was
    most of its CPU, and a processed mail's event and acknowledgement took two confirm round
    trips. The messages are the ones :func:`publish` sends (JSON body, persistent, a message
    id and the correlation id), on the broker's own confirming channel, each
    :func:`mandatory` or not as :func:`publish` would send it.
    """
    if not messages:
        return
    exchange = await broker.declare_exchange(MAIL_EXCHANGE)
    channel = await exchange.channel.get_underlay_channel()
    if not isinstance(channel, aiormq.Channel):  # only it can write without waiting
        raise TypeError(f"unexpected AMQP channel {type(channel).__name__}")
    confirms = []
    for message, routing_key in messages:
        amqp = Message(
            message.model_dump_json().encode(),
            content_type="application/json",
            delivery_mode=DeliveryMode.PERSISTENT,
            correlation_id=getattr(message, "correlation_id", None) or uuid.uuid4().hex,
            message_id=uuid.uuid4().hex,
        )
        confirms.append(
            asyncio.ensure_future(
                channel.basic_publish(
                    amqp.body,
                    exchange=exchange.name,
                    routing_key=routing_key,
                    properties=amqp.properties,
                    mandatory=mandatory(routing_key),
                    wait=False,
                )
            )
        )
    outcomes = await asyncio.gather(*confirms, return_exceptions=True)
    failed = next((o for o in outcomes if isinstance(o, BaseException)), None)
    if failed is not None:
        raise failed
