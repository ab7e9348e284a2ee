"""The sender's domain step: one ``OutgoingMail`` → one mail sent over SMTP, once per mail_id.

1. Claim the outbox entry (created once per ``mail_id``; every delivery counts an attempt).
   Already sent → return it: a redelivered message sends nothing.
2. Record the mail on its case with its Message-ID *before* sending: the customer's reply
   may arrive seconds later, and its In-Reply-To must find the case.
3. Send, then mark the entry sent with the server's reply.

A crash between sending and marking sends the mail again on redelivery. SMTP offers no
way to avoid that; the resend carries the same Message-ID, so receivers can tell.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pymongo.errors import ConnectionFailure

from services.sender.compose import compose, derive_message_id
from services.sender.smtp import SmtpReply, SmtpTransport
from shared.errors import Permanent, Transient
from shared.models.config import OutgoingConnection, SystemConfig
from shared.models.messages import OutgoingMail
from shared.models.records import CaseMessage, OutboxEntry
from shared.runtime import Runtime

log = logging.getLogger(__name__)


@asynccontextmanager
async def _store_available() -> AsyncIterator[None]:
    try:
        yield
    except ConnectionFailure as exc:
        raise Transient(f"MongoDB unavailable: {type(exc).__name__}") from exc


async def deliver(rt: Runtime, mail: OutgoingMail, transport: SmtpTransport) -> OutboxEntry:
    """Send ``mail`` unless it was sent before; return its outbox entry.

    Raises Transient (retry later) or Permanent (the entry is marked failed first).
    """
    config = rt.config  # one snapshot for the whole delivery, however the broadcast races it
    async with _store_available():
        entry = await rt.store.outbox.claim(
            entry=OutboxEntry(
                id=mail.mail_id,
                message_id=derive_message_id(
                    mail.mail_id, str(config.addresses.from_address.address)
                ),
                case_number=mail.case_number,
                kind=mail.kind,
                to=mail.to,
                subject=mail.subject,
                correlation_id=mail.correlation_id,
            )
        )
        if entry.status == "sent":
            log.info("mail already sent", extra={"mail_id": mail.mail_id})
            return entry
        if config.outgoing is None:
            raise Transient(
                "no outgoing SMTP connection is configured (property outgoing/smtp); "
                "set it with `mailroom outgoing set` or PUT /outgoing"
            )
        try:
            reply = await _send(
                rt, mail, entry, config=config, connection=config.outgoing, transport=transport
            )
        except Permanent as exc:
            await rt.store.outbox.mark(mail_id=mail.mail_id, status="failed", error=str(exc))
            raise
        refused = "; ".join(f"{rcpt}: {text}" for rcpt, text in reply.refused.items())
        await rt.store.outbox.mark(
            mail_id=mail.mail_id,
            status="sent",
            smtp_reply=reply.reply,
            error=f"refused recipients: {refused}" if refused else None,
        )
        sent = await rt.store.outbox.get(mail_id=mail.mail_id)
    assert sent is not None  # claimed above, and entries are never deleted
    log.info(
        "mail sent",
        extra={"mail_id": mail.mail_id, "message_id": sent.message_id, "smtp_reply": reply.reply},
    )
    return sent


async def _send(
    rt: Runtime,
    mail: OutgoingMail,
    entry: OutboxEntry,
    *,
    config: SystemConfig,
    connection: OutgoingConnection,
    transport: SmtpTransport,
) -> SmtpReply:
    try:
        # The id stored at the first attempt, even if the From address changed since.
        message = compose(mail, config, message_id=entry.message_id)
    except ValueError as exc:  # the subject template does not render
        raise Permanent(str(exc)) from exc
    if mail.case_number is not None:
        await rt.store.cases.add_message(
            message=CaseMessage.model_validate(
                {
                    "case_number": mail.case_number,
                    "direction": "out",
                    "message_id": entry.message_id,
                    "outbox_id": mail.mail_id,
                    "subject": str(message["Subject"]),
                    "from": [config.addresses.from_address],
                    "to": mail.to,
                    "date": mail.sent_at,
                    "in_reply_to": mail.in_reply_to,
                    "references": mail.references,
                    "text": mail.text,
                }
            )
        )
    return await transport.send(message, connection)
