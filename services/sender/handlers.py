"""``mail.outgoing`` → deliver, with the retry policy visible at a glance:

- Transient (a recipient deferred, SMTP or MongoDB away) → delayed retry through
  ``mail.retry`` with the sender's backoff (``shared.retry``: doubling up to an hour), for
  the queue lifetime (5 days by default) counted from the first failure, like Postfix's
  queue; then the mail is given up: its recipients still waiting fail, the administrators
  get a bounce-style notification and the mail goes to the desk;
- Permanent (every recipient refused, a template failing), a store refusal and any bug →
  dead-lettered to the desk with the reason in the message's headers (recorded on the outbox
  entry too when MongoDB answers).

Should even the retry publish fail (broker gone, or its channel not yet reopened after the
broker came back), the exception reaches FastStream, which hands the message back to the
queue (``NACK_ON_ERROR``; a reject would dead-letter an outage to the desk), or the broker
redelivers it when the connection is gone: a mail is never dropped nor blamed.

Each delivery runs in its own task (up to ``MAILROOM_SENDER_PREFETCH``), so up to
``concurrency`` mails are on the wire at once (see ``pool``), and the outbox writes of the
mails in flight are group-committed (``OutboxBatcher``). Two messages with the same
``mail_id`` (a publisher that published twice) are handled one after the other, so the second
finds the recipients the first reached and does not send to them again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from faststream import AckPolicy
from faststream.rabbit import Channel, RabbitMessage, RabbitRouter

from services.sender.deliver import deliver
from services.sender.deps import SenderDeps
from services.sender.notifications import undelivered_mail
from services.sender.transport import OutgoingTransport
from shared.broker import publish
from shared.errors import Permanent, StoreError, StoreUnavailable, Transient
from shared.models.messages import OutgoingMail, utcnow
from shared.retry import RetrySettings, RetryState, dead_letter, retry_later
from shared.topology import MAIL_EXCHANGE, MAIL_OUTGOING, SENDER_OUTBOUND

log = logging.getLogger(__name__)


def build_router(
    deps: SenderDeps, transport: OutgoingTransport, retry: RetrySettings | None = None
) -> RabbitRouter:
    """The sender's subscriber on ``sender.outbound``, sending through ``transport``, with
    ``deps.settings.prefetch`` messages in flight."""
    router = RabbitRouter()
    one_at_a_time = _PerMail()
    policy = (retry or RetrySettings()).sender

    @router.subscriber(
        SENDER_OUTBOUND,
        MAIL_EXCHANGE,
        title="sender.outbound",
        channel=Channel(prefetch_count=deps.settings.prefetch),
        ack_policy=AckPolicy.NACK_ON_ERROR,
        description="Builds each outgoing mail and sends it over SMTP, once per mail_id.",
    )
    async def mail_outgoing(mail: OutgoingMail, message: RabbitMessage) -> None:
        state = RetryState.of(message.headers)
        try:
            async with one_at_a_time(mail.mail_id):
                await deliver(deps, mail, transport)
        except Transient as exc:
            if policy.expired(state.since):
                await _give_up(deps, mail, state, exc)
                return
            delay = await retry_later(
                deps.publisher, mail, routing_key=MAIL_OUTGOING, state=state, policy=policy
            )
            log.warning(
                "transient failure, retrying",
                extra={"mail_id": mail.mail_id, "delay_s": delay, "error": str(exc)},
            )
            if not isinstance(exc, StoreUnavailable):  # MongoDB away: nothing to write to
                await _note_next_attempt(deps, mail, delay)
        except Permanent as exc:
            # deliver() recorded the reason on the outbox entry already (when it could).
            log.error("mail failed", extra={"mail_id": mail.mail_id, "error": str(exc)})
            await dead_letter(deps.publisher, mail, routing_key=MAIL_OUTGOING, reason=str(exc))
        except StoreError as exc:
            await _reject(deps, mail, f"store error: {exc}")
        except Exception as exc:
            log.exception("unexpected error while sending", extra={"mail_id": mail.mail_id})
            await _reject(deps, mail, f"unexpected {type(exc).__name__}: {exc}")

    return router


async def _note_next_attempt(deps: SenderDeps, mail: OutgoingMail, delay: int) -> None:
    """Show operators when the mail is tried again (best effort: the retry is parked)."""
    try:
        await deps.repos().outbox_repo.schedule(
            mail_id=mail.mail_id, at=utcnow() + timedelta(seconds=delay)
        )
    except (Transient, StoreError) as exc:
        log.info("next attempt not recorded", extra={"mail_id": mail.mail_id, "error": str(exc)})


@dataclass
class _Turn:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class _PerMail:
    """Serialises deliveries of the same ``mail_id`` within this process."""

    def __init__(self) -> None:
        self._turns: dict[str, _Turn] = {}

    @asynccontextmanager
    async def __call__(self, mail_id: str) -> AsyncIterator[None]:
        turn = self._turns.setdefault(mail_id, _Turn())
        turn.users += 1
        try:
            async with turn.lock:
                yield
        finally:
            turn.users -= 1
            if not turn.users:  # the last one out forgets the lock
                del self._turns[mail_id]


async def _give_up(deps: SenderDeps, mail: OutgoingMail, state: RetryState, exc: Exception) -> None:
    """The queue lifetime is over: notify the administrators (unless the mail is itself such a
    notification: no bounce of a bounce), then the desk."""
    hours = (time.time() - state.since) / 3600
    reason = f"not delivered within {hours:.0f} h ({state.attempt + 1} attempts): {exc}"
    notice = undelivered_mail(mail, reason, deps.config())
    if notice is not None:
        await publish(deps.publisher, notice, routing_key=MAIL_OUTGOING)
    await _reject(deps, mail, reason)


async def _reject(deps: SenderDeps, mail: OutgoingMail, reason: str) -> None:
    """Dead-letter with ``reason``, recorded on the outbox entry if MongoDB answers."""
    log.error(
        "mail failed",
        extra={"mail_id": mail.mail_id, "correlation_id": mail.correlation_id, "error": reason},
    )
    await dead_letter(
        deps.publisher,
        mail,
        routing_key=MAIL_OUTGOING,
        reason=reason,
        record=lambda: deps.repos().outbox_repo.give_up(mail_id=mail.mail_id, error=reason),
    )
