"""``mail.received`` → process_mail, with the retry policy visible at a glance:
Transient → delayed retry; Permanent (and any bug) → reason recorded, rejected to the desk."""

from __future__ import annotations

import logging

from faststream.exceptions import RejectMessage
from faststream.rabbit import RabbitMessage, RabbitRouter

from services.processor.process import process_mail
from shared import metrics
from shared.errors import Permanent, Transient
from shared.models.messages import MailReceived
from shared.retry import attempt_of, retry_later
from shared.runtime import Runtime
from shared.topology import CONSUMER_CHANNEL, MAIL_EXCHANGE, MAIL_RECEIVED, PROCESSOR_INBOUND

log = logging.getLogger(__name__)


def build_router(rt: Runtime) -> RabbitRouter:
    """The processor's subscriber."""
    router = RabbitRouter()

    @router.subscriber(
        PROCESSOR_INBOUND, MAIL_EXCHANGE, title="processor.inbound", channel=CONSUMER_CHANNEL
    )
    async def mail_received(msg: MailReceived, message: RabbitMessage) -> None:
        attempt = attempt_of(message.headers) + 1
        try:
            await process_mail(rt, msg)
        except Transient as exc:
            if attempt > rt.config.settings.fetch_retries:
                await _fail(rt, msg, f"gave up after {attempt} attempts: {exc}")
            delay = await retry_later(rt.broker, msg, routing_key=MAIL_RECEIVED, attempt=attempt)
            log.warning(
                "transient failure, retrying",
                extra={"raw_id": msg.raw_id, "delay_s": delay, "error": str(exc)},
            )
        except Permanent as exc:
            await _fail(rt, msg, str(exc))
        except Exception as exc:
            log.exception("unexpected error while processing", extra={"raw_id": msg.raw_id})
            await _fail(rt, msg, f"internal error: {type(exc).__name__}: {exc}")

    return router


async def _fail(rt: Runtime, msg: MailReceived, reason: str) -> None:
    metrics.mail_processed("failed")
    log.error(
        "mail failed",
        extra={"raw_id": msg.raw_id, "correlation_id": msg.correlation_id, "error": reason},
    )
    await rt.store.raw_emails.record_failure(raw_id=msg.raw_id, error=reason)
    raise RejectMessage()
