"""The one retry policy: how long each stage waits, for how long it keeps trying, and how a
message leaves for the failed-mail desk.

Every stage — the processor, the sender, the fetcher's reconnects and every service's
start-up — waits with exponential backoff (``first_delay_s`` doubling up to ``cap_s``).
What ends the retrying is time, never a number of attempts:

- an outage (MongoDB, RabbitMQ, an SMTP or IMAP server away) is retried without limit;
- outgoing mail is kept like Postfix keeps its queue: for ``lifetime_s`` (5 days by
  default, Postfix's ``maximal_queue_lifetime``) from its first failure, then the sender
  gives up, notifies the administrators (a bounce-style notification) and the mail goes to
  the desk; the processor has no lifetime by default (its transient failures are outages).

The attempt number and the time of the first failure travel in the retried message's
headers, so the delay never falls back while MongoDB is away (nothing is read from it to
decide). Delayed messages wait in the ``mail.retry`` TTL tiers (``shared.topology``); a
delay is rounded up to the next tier, the longest tier being the cap.

A message that must go to the desk is dead-lettered here, by publishing it to ``mail.dlx``
with its reason in the ``x-mailroom-error`` header (then the original is acknowledged): the
reason reaches the desk even when MongoDB was away when the mail failed.

Settings are process settings (``MAILROOM_RETRY_<STAGE>__<FIELD>``, e.g.
``MAILROOM_RETRY_SENDER__LIFETIME_S=86400``), so every instance of a stage agrees on them
from its start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from faststream.rabbit import RabbitBroker
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.errors import StoreUnavailable, Transient
from shared.topology import DLX_EXCHANGE, RETRY_EXCHANGE, RETRY_TIERS, retry_routing_key

log = logging.getLogger(__name__)

ATTEMPT_HEADER = "x-mailroom-attempt"
"""Retries so far (1 on the first retried copy)."""
SINCE_HEADER = "x-mailroom-first-failure"
"""Unix time of the message's first transient failure, in whole milliseconds: its queue
lifetime counts from it. An integer because AMQP libraries (pamqp) encode a Python float as
a single-precision float, which puts a timestamp up to a minute off."""
ERROR_HEADER = "x-mailroom-error"
"""Why a message was dead-lettered: read by the failed-mail desk."""

T = TypeVar("T")


class StagePolicy(BaseModel):
    """Backoff and lifetime of one stage."""

    first_delay_s: float = Field(default=5.0, gt=0, le=3600)
    cap_s: float = Field(default=3600.0, gt=0, le=86400)
    """The longest wait between two attempts."""
    lifetime_s: float | None = Field(default=None, gt=0)
    """How long after its first failure a message is still retried; None: without limit."""

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based): exponential, capped."""
        exponent = min(max(attempt, 1) - 1, 40)  # 2**40 s is past every cap
        return min(self.cap_s, self.first_delay_s * float(2**exponent))

    def expired(self, since: float, *, now: float | None = None) -> bool:
        """True when a message failing since ``since`` (unix time) is past its lifetime."""
        if self.lifetime_s is None:
            return False
        return (time.time() if now is None else now) - since >= self.lifetime_s


class RetrySettings(BaseSettings):
    """Per-stage retry settings: ``MAILROOM_RETRY_<STAGE>__<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="MAILROOM_RETRY_",
        env_nested_delimiter="__",
        env_ignore_empty=True,
        extra="ignore",
    )

    processor: StagePolicy = StagePolicy(first_delay_s=5, cap_s=300)
    """Processing fails transiently only when MongoDB or RabbitMQ is away: no lifetime."""
    sender: StagePolicy = StagePolicy(first_delay_s=5, cap_s=3600, lifetime_s=5 * 86400)
    """Postfix's queue: up to an hour between tries, for five days."""
    fetcher: StagePolicy = StagePolicy(first_delay_s=1, cap_s=300)
    """Reconnecting to a mailbox: without limit (administrators are notified meanwhile)."""
    startup: StagePolicy = StagePolicy(first_delay_s=1, cap_s=30)
    """A service whose MongoDB or RabbitMQ is not there yet waits for it."""


@dataclass(frozen=True)
class RetryState:
    """Where a message stands in its retries, read from its headers."""

    attempt: int
    """Retries so far: 0 for a message never retried."""
    since: float
    """Unix time of its first failure (now, for one that has not failed before)."""

    @classmethod
    def of(cls, headers: Mapping[str, Any], *, now: float | None = None) -> RetryState:
        """The state carried by a delivered message's headers."""
        moment = time.time() if now is None else now
        try:
            attempt = max(int(headers.get(ATTEMPT_HEADER, 0)), 0)
        except (TypeError, ValueError):
            attempt = 0
        return cls(attempt=attempt, since=min(_since(headers.get(SINCE_HEADER), moment), moment))

    def headers(self) -> dict[str, Any]:
        """The headers that carry this state on a message."""
        return {ATTEMPT_HEADER: self.attempt, SINCE_HEADER: round(self.since * 1000)}


def _since(value: Any, default: float) -> float:
    """Unix seconds from the since header: an integer is milliseconds; a float (written by
    earlier versions, in seconds) is taken as it is."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return value / 1000 if isinstance(value, int) else float(value)


def tier_for(delay: float) -> int:
    """The retry tier a ``delay`` waits in: the shortest at least as long, else the longest."""
    return next((tier for tier in RETRY_TIERS if tier >= delay), RETRY_TIERS[-1])


async def retry_later(
    broker: RabbitBroker,
    message: BaseModel,
    *,
    routing_key: str,
    state: RetryState,
    policy: StagePolicy,
) -> int:
    """Park ``message`` for its next attempt; returns the delay in seconds.

    The copy is persistent and confirmed before the caller acks the original, so a crash
    in between leaves two copies, never none; consumers are idempotent.
    """
    attempt = state.attempt + 1
    delay = tier_for(policy.delay(attempt))
    await broker.publish(
        message,
        exchange=RETRY_EXCHANGE,
        routing_key=retry_routing_key(routing_key, delay),
        persist=True,
        mandatory=True,
        headers=RetryState(attempt=attempt, since=state.since).headers(),
        correlation_id=getattr(message, "correlation_id", None),
    )
    return delay


async def dead_letter(
    broker: RabbitBroker,
    message: BaseModel,
    *,
    routing_key: str,
    reason: str,
    record: Callable[[], Awaitable[object]] | None = None,
) -> None:
    """Send ``message`` to the desk's dead-letter queue with ``reason`` in its headers.

    ``record`` first writes the reason on the stored document, best effort: with MongoDB
    away the dead letter's header carries the reason to the desk instead. Confirmed before
    the caller acknowledges the original: a crash in between leaves the original to be
    handled again (the desk records one entry per mail), never none.
    """
    if record is not None:
        try:
            await record()
        except StoreUnavailable:
            log.warning(
                "reason not recorded (MongoDB away); the dead letter carries it",
                extra={"routing_key": routing_key},
            )
    await broker.publish(
        message,
        exchange=DLX_EXCHANGE,
        routing_key=routing_key,
        persist=True,
        mandatory=True,
        headers={ERROR_HEADER: reason[:2000]},
        correlation_id=getattr(message, "correlation_id", None),
    )


async def until_available(
    what: str,
    address: str,
    step: Callable[[], Awaitable[T]],
    *,
    policy: StagePolicy,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Run ``step`` until it does not raise Transient, waiting with ``policy``'s backoff.

    Each failure is one log line with ``what``, its ``address`` (no credentials: the caller
    passes a redacted one) and the wait; any other error propagates. For a service's
    start-up and reconnects: a dependency that is not there yet is waited for, not a crash.
    """
    attempt = 0
    while True:
        try:
            return await step()
        except Transient as exc:
            attempt += 1
            delay = policy.delay(attempt)
            log.warning(
                "%s at %s unavailable (%s); retrying in %.0f s",
                what,
                address,
                exc,
                delay,
                extra={"dependency": what, "address": address, "attempt": attempt},
            )
            await sleep(delay)
