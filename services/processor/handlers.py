"""``mail.received`` → process_mail, with the retry policy visible at a glance:

- Transient (MongoDB or RabbitMQ away) → delayed retry through ``mail.retry`` with the
  processor's backoff (``shared.retry``), without limit of attempts: an outage is never the
  mail's fault and never reaches the desk;
- a crash suspect (redelivered after its processor stopped mid-mail) runs alone, and the
  mail that crashed the processor alone three times goes to the desk (``suspects``);
- Permanent (unparseable, refused by a script, too slow), a store refusal and any bug →
  dead-lettered to the desk with the reason in the message's headers, and recorded on the
  stored mail when MongoDB answers (the desk reads the header when the record lacks it).

Should a publish itself fail (the broker gone or just back), the exception reaches FastStream,
which hands the message back to the queue (``NACK_ON_ERROR``), never to the desk.
"""

from __future__ import annotations

import asyncio
import logging

from faststream import AckPolicy
from faststream.rabbit import Channel, RabbitMessage, RabbitRouter

from services.processor.deps import ProcessorDeps
from services.processor.process import process_mail
from services.processor.settings import ProcessorProcessSettings
from services.processor.suspects import MAX_SOLO_CRASHES, Turns, Verdict, verdict
from shared import metrics
from shared.errors import NotFound, Permanent, StoreError, StoreUnavailable, Transient
from shared.models.messages import MailReceived
from shared.retry import (
    ATTEMPT_HEADER,
    SINCE_HEADER,
    RetrySettings,
    RetryState,
    dead_letter,
    retry_later,
)
from shared.topology import MAIL_EXCHANGE, MAIL_RECEIVED, PROCESSOR_INBOUND

log = logging.getLogger(__name__)


def build_router(
    deps: ProcessorDeps,
    settings: ProcessorProcessSettings,
    retry: RetrySettings | None = None,
) -> RabbitRouter:
    """The processor's subscriber, taking ``settings.prefetch`` mails from RabbitMQ and
    processing up to ``settings.concurrency`` of them at once."""
    router = RabbitRouter()
    policy = (retry or RetrySettings()).processor
    # aio-pika runs every delivery in its own task: the prefetch bounds them, the semaphore
    # bounds how many parse and decide at the same moment.
    running = asyncio.Semaphore(settings.concurrency)

    @router.subscriber(
        PROCESSOR_INBOUND,
        MAIL_EXCHANGE,
        title="processor.inbound",
        channel=Channel(prefetch_count=settings.prefetch),
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def mail_received(msg: MailReceived, message: RabbitMessage) -> None:
        state = RetryState.of(message.headers)
        try:
            found = await _judge(deps, msg, message)
            if found is Verdict.POISON:
                await _finish(deps, msg)  # a replay starts with a clean slate
                await _fail(deps, msg, CRASHED)
                return
            if found is Verdict.REFRESH:
                await _refresh(deps, msg, message)
                return
            suspect = found is Verdict.SUSPECT
            async with running, turns.alone() if suspect else turns.shared():
                outcome = await process_mail(
                    deps, msg, alone=suspect, inline_parse_bytes=settings.inline_parse_bytes
                )
            if outcome.duplicate_delivery:
                await deps.store.raw_emails.finish_attempt(raw_id=msg.raw_id)
        except Transient as exc:
            await _finish(deps, msg)
            if policy.expired(state.since):
                await _fail(deps, msg, f"gave up after {state.attempt + 1} attempts: {exc}")
                return
            delay = await retry_later(
                deps.broker, msg, routing_key=MAIL_RECEIVED, state=state, policy=policy
            )
            log.warning(
                "transient failure, retrying",
                extra={"raw_id": msg.raw_id, "delay_s": delay, "error": str(exc)},
            )
        except Permanent as exc:
            await _finish(deps, msg)
            await _fail(deps, msg, str(exc))
        except StoreError as exc:
            await _finish(deps, msg)
            await _fail(deps, msg, f"store error: {exc}")
        except Exception as exc:
            log.exception("unexpected error while processing", extra={"raw_id": msg.raw_id})
            await _finish(deps, msg)
            await _fail(deps, msg, f"internal error: {type(exc).__name__}: {exc}")

    turns = Turns()
    return router


CRASHED = (
    f"the processor stopped {MAX_SOLO_CRASHES} times while processing this mail alone "
    "(a crash, or killed for memory): held to be the cause"
)


async def _judge(deps: ProcessorDeps, msg: MailReceived, message: RabbitMessage) -> Verdict:
    """The delivery's verdict (``suspects``); a first delivery reads nothing."""
    redelivered = bool(getattr(message.raw_message, "redelivered", False))
    if not redelivered:
        return Verdict.NORMAL
    try:
        record = await deps.store.raw_emails.get(raw_id=msg.raw_id)
    except NotFound:
        record = None  # processing says so, with the reason
    count = _delivery_count(message)
    return verdict(record, redelivered=True, delivery_count=count)


def _delivery_count(message: RabbitMessage) -> int:
    try:
        return int(message.headers.get("x-delivery-count", 0))
    except (TypeError, ValueError):
        return 0


async def _refresh(deps: ProcessorDeps, msg: MailReceived, message: RabbitMessage) -> None:
    """Re-publish an innocent mail fresh (its retry state kept); the original is then acked."""
    headers = {k: v for k, v in message.headers.items() if k in (ATTEMPT_HEADER, SINCE_HEADER)}
    await deps.broker.publish(
        msg,
        exchange=MAIL_EXCHANGE,
        routing_key=MAIL_RECEIVED,
        persist=True,
        mandatory=True,
        headers=headers,
        correlation_id=msg.correlation_id,
    )
    log.info(
        "mail re-published fresh after other mails' crashes",
        extra={"raw_id": msg.raw_id, "deliveries": _delivery_count(message)},
    )


async def _finish(deps: ProcessorDeps, msg: MailReceived) -> None:
    """The attempt ended without a crash (best effort: MongoDB may be the failure)."""
    try:
        await deps.store.raw_emails.finish_attempt(raw_id=msg.raw_id)
    except (StoreUnavailable, StoreError):
        return


async def _fail(deps: ProcessorDeps, msg: MailReceived, reason: str) -> None:
    """Record ``reason`` on the mail if MongoDB answers, then dead-letter it with the reason."""
    metrics.mail_processed("failed")
    log.error(
        "mail failed",
        extra={"raw_id": msg.raw_id, "correlation_id": msg.correlation_id, "error": reason},
    )
    await dead_letter(
        deps.broker,
        msg,
        routing_key=MAIL_RECEIVED,
        reason=reason,
        record=lambda: deps.store.raw_emails.record_failure(raw_id=msg.raw_id, error=reason),
    )
