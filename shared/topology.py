"""Every exchange, queue and routing key of Mailroom, defined once.

Work queues are durable quorum queues with a delivery limit (a poison message cannot loop)
and dead-letter into ``mail.dlx`` under their original routing key. Transient failures are
re-published to ``mail.retry`` with a tier suffix (``mail.received.30s``); each tier is a
TTL queue that dead-letters back into ``mail`` under the original key, so the message
returns to its work queue after the delay without any consumer holding it.
"""

from __future__ import annotations

from typing import Final

from faststream.rabbit import Channel, ExchangeType, QueueType, RabbitExchange, RabbitQueue

MAIL_RECEIVED: Final = "mail.received"
MAIL_OUTGOING: Final = "mail.outgoing"
CASE_CREATED: Final = "case.created"
CASE_UPDATED: Final = "case.updated"
ACCOUNT_FAILING: Final = "account.failing"

DELIVERY_LIMIT: Final = 10
CONSUMER_CHANNEL: Final = Channel(prefetch_count=16)
"""Every consumer holds at most 16 unacknowledged messages: a burst waits in RabbitMQ, not in
memory, and a handler's timeout measures its own work rather than its wait for MongoDB."""
RETRY_TIERS: Final[tuple[int, ...]] = (5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)
"""The delays, in seconds, a retried message can wait (one TTL queue each); the retry policy
(``shared.retry``) rounds its exponential backoff up to the next of them."""

MAIL_EXCHANGE: Final = RabbitExchange("mail", type=ExchangeType.TOPIC, durable=True)
DLX_EXCHANGE: Final = RabbitExchange("mail.dlx", type=ExchangeType.TOPIC, durable=True)
RETRY_EXCHANGE: Final = RabbitExchange("mail.retry", type=ExchangeType.TOPIC, durable=True)
CONFIG_EXCHANGE: Final = RabbitExchange("config", type=ExchangeType.FANOUT, durable=True)


def _work_queue(name: str, routing_key: str) -> RabbitQueue:
    return RabbitQueue(
        name,
        queue_type=QueueType.QUORUM,
        durable=True,
        routing_key=routing_key,
        arguments={
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": DLX_EXCHANGE.name,
            # at-most-once dead-lettering (the default) may drop a dead letter if the DLX
            # queue is unavailable; at-least-once requires reject-publish overflow.
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        },
    )


def _dead_letter_queue(name: str, routing_key: str) -> RabbitQueue:
    return RabbitQueue(name, queue_type=QueueType.QUORUM, durable=True, routing_key=routing_key)


PROCESSOR_INBOUND: Final = _work_queue("processor.inbound", MAIL_RECEIVED)
SENDER_OUTBOUND: Final = _work_queue("sender.outbound", MAIL_OUTGOING)
PROCESSOR_FAILED: Final = _dead_letter_queue("processor.failed", MAIL_RECEIVED)
SENDER_FAILED: Final = _dead_letter_queue("sender.failed", MAIL_OUTGOING)

WORK_QUEUES: Final = {MAIL_RECEIVED: PROCESSOR_INBOUND, MAIL_OUTGOING: SENDER_OUTBOUND}
DEAD_LETTER_QUEUES: Final = {MAIL_RECEIVED: PROCESSOR_FAILED, MAIL_OUTGOING: SENDER_FAILED}


def retry_routing_key(routing_key: str, delay: int) -> str:
    """The key under which a message waits ``delay`` seconds in the retry tier."""
    return f"{routing_key}.{delay}s"


def retry_queue(routing_key: str, delay: int) -> RabbitQueue:
    """The TTL queue that holds messages of ``routing_key`` for ``delay`` seconds."""
    return RabbitQueue(
        f"retry.{routing_key}.{delay}s",
        queue_type=QueueType.QUORUM,
        durable=True,
        routing_key=retry_routing_key(routing_key, delay),
        arguments={
            "x-message-ttl": delay * 1000,
            "x-dead-letter-exchange": MAIL_EXCHANGE.name,
            "x-dead-letter-routing-key": routing_key,
        },
    )


def config_queue(service: str, instance_id: str) -> RabbitQueue:
    """One exclusive, auto-deleted queue per service instance for the config broadcast."""
    return RabbitQueue(
        f"config.{service}.{instance_id}",
        durable=False,
        exclusive=True,
        auto_delete=True,
    )


SENDER_ACCOUNT_FAILING: Final = RabbitQueue(
    "sender.account_failing",
    queue_type=QueueType.QUORUM,
    durable=True,
    routing_key=ACCOUNT_FAILING,
    arguments={"x-delivery-limit": DELIVERY_LIMIT},
)
"""``account.failing`` → the sender, which mails the fetch-error notification."""
