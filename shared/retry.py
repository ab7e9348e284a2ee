"""Delayed retry of transient failures through the ``mail.retry`` TTL tiers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faststream.rabbit import RabbitBroker
from pydantic import BaseModel

from shared.topology import RETRY_EXCHANGE, retry_delay, retry_routing_key

ATTEMPT_HEADER = "x-mailroom-attempt"


def attempt_of(headers: Mapping[str, Any]) -> int:
    """How many times this message was already retried (0 for a first delivery)."""
    try:
        return int(headers.get(ATTEMPT_HEADER, 0))
    except (TypeError, ValueError):
        return 0


async def retry_later(
    broker: RabbitBroker, message: BaseModel, *, routing_key: str, attempt: int
) -> int:
    """Park ``message`` in the retry tier for ``attempt`` (1-based); returns the delay in s.

    The copy is persistent and confirmed before the caller acks the original, so a crash
    in between leaves two copies, never none; consumers are idempotent.
    """
    delay = retry_delay(attempt)
    await broker.publish(
        message,
        exchange=RETRY_EXCHANGE,
        routing_key=retry_routing_key(routing_key, delay),
        persist=True,
        mandatory=True,
        headers={ATTEMPT_HEADER: attempt},
        correlation_id=getattr(message, "correlation_id", None),
    )
    return delay
