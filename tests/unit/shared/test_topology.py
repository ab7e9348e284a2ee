"""The queue topology: every work queue is a quorum queue that dead-letters and is bounded."""

from __future__ import annotations

from shared import topology as t


def test_work_queues_are_bounded_quorum_queues_dead_lettering_to_the_dlx() -> None:
    for routing_key, queue in t.WORK_QUEUES.items():
        assert queue.durable
        assert queue.arguments is not None
        assert queue.arguments["x-queue-type"] == "quorum"
        assert queue.arguments["x-delivery-limit"] == t.DELIVERY_LIMIT
        assert queue.arguments["x-dead-letter-exchange"] == t.DLX_EXCHANGE.name
        assert queue.routing_key == routing_key
        assert t.DEAD_LETTER_QUEUES[routing_key].routing_key == routing_key


def test_routing_keys_match_the_architecture() -> None:
    assert t.PROCESSOR_INBOUND.name == "processor.inbound"
    assert t.SENDER_OUTBOUND.name == "sender.outbound"
    assert t.PROCESSOR_FAILED.name == "processor.failed"
    assert t.SENDER_FAILED.name == "sender.failed"
    assert t.MAIL_RECEIVED == "mail.received" and t.MAIL_OUTGOING == "mail.outgoing"


def test_retry_tiers_grow_and_return_to_the_work_queue() -> None:
    assert list(t.RETRY_TIERS) == sorted(t.RETRY_TIERS) and t.RETRY_TIERS[-1] == 3600
    tier = t.retry_queue(t.MAIL_RECEIVED, 30)
    assert tier.arguments is not None
    assert tier.arguments["x-message-ttl"] == 30_000
    assert tier.arguments["x-dead-letter-exchange"] == t.MAIL_EXCHANGE.name
    assert tier.arguments["x-dead-letter-routing-key"] == t.MAIL_RECEIVED
    assert tier.routing_key == "mail.received.30s"


def test_config_queue_is_per_instance_and_transient() -> None:
    queue = t.config_queue("processor", "host-1")
    assert queue.exclusive and queue.auto_delete and not queue.durable
    assert queue.name != t.config_queue("processor", "host-2").name
