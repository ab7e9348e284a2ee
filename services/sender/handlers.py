"""``mail.outgoing`` → deliver, with the retry policy visible at a glance:
Transient → delayed retry through ``mail.retry``; Permanent, exhausted retries and any bug →
reason recorded on the outbox entry, message rejected to ``sender.failed`` (the desk).

Should even the retry publish or the failure record fail (broker or MongoDB gone), the
exception reaches FastStream, whose default policy rejects the message to the dead letters
as well: a mail is never dropped, and the consumer keeps running.

Each delivery runs in its own task (up to the channel's prefetch), so up to
``concurrency`` mails are on the wire at once (see ``pool``). Two messages with the same
``mail_id`` (a publisher that published twice) are handled one after the other, so the second
finds the recipients the first reached and does not send to them again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from faststream.exceptions import RejectMessage
from faststream.rabbit import RabbitMessage, RabbitRouter
from pymongo.errors import PyMongoError

from services.sender.deliver import deliver
from services.sender.smtp import SmtpTransport
from shared.errors import Permanent, Transient
from shared.models.messages import OutgoingMail
from shared.retry import attempt_of, retry_later
from shared.runtime import Runtime
from shared.topology import MAIL_EXCHANGE, MAIL_OUTGOING, SENDER_CHANNEL, SENDER_OUTBOUND

log = logging.getLogger(__name__)


def build_router(rt: Runtime, transport: SmtpTransport) -> RabbitRouter:
    """The sender's subscriber on ``sender.outbound``, sending through ``transport``.

    Retries are bounded by the global ``fetch_retries`` setting for now (there is no
    separate ``send_retries`` property yet): once a mail's attempts exceed it, a transient
    failure is treated as permanent.
    """
    router = RabbitRouter()
    one_at_a_time = _PerMail()

    @router.subscriber(
        SENDER_OUTBOUND,
        MAIL_EXCHANGE,
        title="sender.outbound",
        channel=SENDER_CHANNEL,
        description="Builds each outgoing mail and sends it over SMTP, once per mail_id.",
    )
    async def mail_outgoing(mail: OutgoingMail, message: RabbitMessage) -> None:
        try:
            async with one_at_a_time(mail.mail_id):
                await deliver(rt, mail, transport)
        except Transient as exc:
            attempts = await _attempts(rt, mail, message)
            if attempts > rt.config.settings.fetch_retries:
                await _reject(rt, mail, f"gave up after {attempts} attempts: {exc}")
            delay = await retry_later(rt.broker, mail, routing_key=MAIL_OUTGOING, attempt=attempts)
            log.warning(
                "transient failure, retrying",
                extra={"mail_id": mail.mail_id, "delay_s": delay, "error": str(exc)},
            )
        except Permanent as exc:
            # deliver() recorded the reason on the outbox entry already.
            log.error("mail failed", extra={"mail_id": mail.mail_id, "error": str(exc)})
            raise RejectMessage() from exc
        except Exception as exc:
            log.exception("unexpected error while sending", extra={"mail_id": mail.mail_id})
            await _reject(rt, mail, f"unexpected {type(exc).__name__}: {exc}")

    return router


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


async def _attempts(rt: Runtime, mail: OutgoingMail, message: RabbitMessage) -> int:
    """Deliveries so far, from the outbox entry; from the retry header when MongoDB is down."""
    try:
        entry = await rt.store.outbox.get(mail_id=mail.mail_id)
    except PyMongoError:
        entry = None
    return entry.attempts if entry is not None else attempt_of(message.headers) + 1


async def _reject(rt: Runtime, mail: OutgoingMail, reason: str) -> None:
    log.error(
        "mail failed",
        extra={"mail_id": mail.mail_id, "correlation_id": mail.correlation_id, "error": reason},
    )
    await rt.store.outbox.give_up(mail_id=mail.mail_id, error=reason)
    raise RejectMessage()
