"""``mail.received`` → process_mail, with the retry policy visible at a glance:

- Transient (MongoDB or RabbitMQ away) → delayed retry through ``mail.retry`` with the
  processor's backoff (``shared.retry``), without limit of attempts: an outage is never the
  mail's fault and never reaches the desk;
- Permanent (unparseable, refused by a script, too slow), a store refusal and any bug →
  dead-lettered to the desk with the reason in the message's headers, and recorded on the
  stored mail when MongoDB answers (the desk reads the header when the record lacks it).
"""

from __future__ import annotations

import logging

from faststream.rabbit import RabbitMessage, RabbitRouter

from services.processor.process import process_mail
from shared import metrics
from shared.errors import Permanent, StoreError, StoreUnavailable, Transient
from shared.models.messages import MailReceived
from shared.retry import RetrySettings, RetryState, dead_letter, retry_later
from shared.runtime import Runtime
from shared.topology import CONSUMER_CHANNEL, MAIL_EXCHANGE, MAIL_RECEIVED, PROCESSOR_INBOUND

log = logging.getLogger(__name__)


def build_router(rt: Runtime, retry: RetrySettings | None = None) -> RabbitRouter:
    """The processor's subscriber."""
    router = RabbitRouter()
    policy = (retry or RetrySettings()).processor

    @router.subscriber(
        PROCESSOR_INBOUND, MAIL_EXCHANGE, title="processor.inbound", channel=CONSUMER_CHANNEL
    )
    async def mail_received(msg: MailReceived, message: RabbitMessage) -> None:
        state = RetryState.of(message.headers)
        try:
            await process_mail(rt, msg)
        except Transient as exc:
            if policy.expired(state.since):
                await _fail(rt, msg, f"gave up after {state.attempt + 1} attempts: {exc}")
                return
            delay = await retry_later(
                rt.broker, msg, routing_key=MAIL_RECEIVED, state=state, policy=policy
            )
            log.warning(
                "transient failure, retrying",
                extra={"raw_id": msg.raw_id, "delay_s": delay, "error": str(exc)},
            )
        except Permanent as exc:
            await _fail(rt, msg, str(exc))
        except StoreError as exc:
            await _fail(rt, msg, f"store error: {exc}")
        except Exception as exc:
            log.exception("unexpected error while processing", extra={"raw_id": msg.raw_id})
            await _fail(rt, msg, f"internal error: {type(exc).__name__}: {exc}")

    return router


async def _fail(rt: Runtime, msg: MailReceived, reason: str) -> None:
    """Record ``reason`` on the mail if MongoDB answers, then dead-letter it with the reason."""
    metrics.mail_processed("failed")
    log.error(
        "mail failed",
        extra={"raw_id": msg.raw_id, "correlation_id": msg.correlation_id, "error": reason},
    )
    try:
        await rt.store.raw_emails.record_failure(raw_id=msg.raw_id, error=reason)
    except StoreUnavailable:
        log.warning(
            "reason not recorded on the mail (MongoDB away); the dead letter carries it",
            extra={"raw_id": msg.raw_id},
        )
    await dead_letter(rt.broker, msg, routing_key=MAIL_RECEIVED, reason=reason)
