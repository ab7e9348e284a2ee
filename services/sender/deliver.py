"""The sender's domain step: one ``OutgoingMail`` → sent over SMTP, once per recipient.

1. Claim the outbox entry (created once per ``mail_id`` with a queued state per recipient;
   every delivery counts an attempt). Nothing pending → return it: a redelivered message
   sends nothing. A failed entry (replayed from the desk) queues its failed recipients again.
2. Record the mail on its case with its Message-ID *before* sending: the customer's reply
   may arrive seconds later, and its In-Reply-To must find the case.
3. Send to the pending recipients only, then record each recipient's state with the
   server's reply (see ``outcome``): 2xx sent, 4xx deferred (Transient: retried later for
   those recipients only), 5xx failed. No recipient delivered → Permanent (the desk).

A crash between sending and recording sends the mail again on redelivery. SMTP offers no
way to avoid that; the resend carries the same Message-ID, so receivers can tell.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.message import EmailMessage

from pymongo.errors import ConnectionFailure

from services.sender import outcome
from services.sender.compose import compose, derive_message_id
from services.sender.content import Content, finish, render_template
from services.sender.scripts import Stopped, run_scripts
from services.sender.smtp import SmtpTransport, effective_connection
from shared import metrics
from shared.conversation import conversation_reference
from shared.errors import NotFound, Permanent, Transient
from shared.models.config import SystemConfig
from shared.models.messages import OutgoingMail, utcnow
from shared.models.records import (
    ArchivedMail,
    CaseMessage,
    OutboxEntry,
    RecipientDelivery,
    RecipientState,
)
from shared.runtime import Runtime

log = logging.getLogger(__name__)


@asynccontextmanager
async def _store_available() -> AsyncIterator[None]:
    try:
        yield
    except ConnectionFailure as exc:
        raise Transient(f"MongoDB unavailable: {type(exc).__name__}") from exc


async def deliver(rt: Runtime, mail: OutgoingMail, transport: SmtpTransport) -> OutboxEntry:
    """Send ``mail`` to every recipient that has not got it yet; return its outbox entry.

    Raises Transient (some recipient deferred: retry later) or Permanent (no recipient
    can get it); the entry records why before either is raised.
    """
    config = rt.config  # one snapshot for the whole delivery, however the broadcast races it
    async with _store_available():
        entry = await _claim(rt, mail, config)
        recipients = entry.recipients or outcome.initial_recipients(str(a.address) for a in mail.to)
        if entry.status == "failed":  # replayed from the desk: try the failed ones again
            recipients = outcome.reopen(recipients)
        todo = outcome.pending(recipients)
        if not todo:
            log.info("mail already delivered", extra={"mail_id": mail.mail_id})
            return entry
        recipients = await _send(rt, mail, entry, recipients, config, transport)
        summary = outcome.summarise(recipients)
        done = await rt.store.outbox.record(
            entry=entry,
            status=summary.status,
            recipients=recipients,
            error=summary.error,
            smtp_reply=next((r.reply for r in recipients if r.state == "sent"), None),
        )
    metrics.mail_delivered(summary.status, retry=summary.retry)
    if summary.retry:
        raise Transient(summary.error or "recipients deferred")
    if summary.status == "failed":
        raise Permanent(summary.error or "every recipient failed")
    log.info(
        f"mail {summary.status}",
        extra={
            "mail_id": mail.mail_id,
            "message_id": done.message_id,
            "smtp_reply": done.smtp_reply,
        },
    )
    return done


async def _claim(rt: Runtime, mail: OutgoingMail, config: SystemConfig) -> OutboxEntry:
    return await rt.store.outbox.claim(
        entry=OutboxEntry(
            id=mail.mail_id,
            message_id=derive_message_id(
                mail.mail_id, str((mail.from_address or config.addresses.from_address).address)
            ),
            case_number=mail.case_number,
            kind=mail.kind,
            to=mail.to,
            subject=mail.subject,
            correlation_id=mail.correlation_id,
            recipients=outcome.initial_recipients(str(a.address) for a in mail.to),
        )
    )


async def _send(
    rt: Runtime,
    mail: OutgoingMail,
    entry: OutboxEntry,
    recipients: list[RecipientDelivery],
    config: SystemConfig,
    transport: SmtpTransport,
) -> list[RecipientDelivery]:
    """Build and send the mail to the pending recipients; their new states.

    A failure of the whole transaction becomes the state of every pending recipient
    (Transient → deferred, Permanent → failed). Failures before anything could be sent are
    recorded on the entry and raised.
    """

    async def fail_all(state: RecipientState, error: str) -> None:
        after = outcome.apply_error(recipients, state, error, now=utcnow())
        summary = outcome.summarise(after)
        await rt.store.outbox.record(
            entry=entry, status=summary.status, recipients=after, error=error
        )

    intercept = config.system.intercepts
    connection = effective_connection(config)
    if connection is None and not intercept:
        error = (
            "no outgoing SMTP connection is configured (property outgoing/smtp); "
            "set it with `mailroom outgoing set` or PUT /outgoing"
        )
        await fail_all("deferred", error)
        raise Transient(error)
    try:
        built = await _build(rt, mail, entry, recipients, config)
    except (ValueError, Permanent) as exc:  # From not allowed, a template or script failing
        await fail_all("failed", str(exc))
        raise Permanent(str(exc)) from exc
    if isinstance(built, Stopped):
        log.info("mail stopped", extra={"mail_id": mail.mail_id, "reason": str(built)})
        return outcome.apply_error(recipients, "stopped", str(built), now=utcnow())
    mail, recipients, content, message = built
    await _record_on_case(rt, mail, entry, content, message)
    if intercept:
        return await _intercept(rt, mail, entry, recipients, config, content, message)
    assert connection is not None
    try:
        reply = await transport.send(message, connection, outcome.pending(recipients))
    except Transient as exc:
        return outcome.apply_error(recipients, "deferred", str(exc), now=utcnow())
    except Permanent as exc:
        return outcome.apply_error(recipients, "failed", str(exc), now=utcnow())
    return outcome.apply_reply(recipients, reply, now=utcnow())


Built = tuple[OutgoingMail, list[RecipientDelivery], Content, EmailMessage]


async def _build(
    rt: Runtime,
    mail: OutgoingMail,
    entry: OutboxEntry,
    recipients: list[RecipientDelivery],
    config: SystemConfig,
) -> Built | Stopped:
    """Template, outgoing-mail scripts, then the message; or the script that stopped it.

    Raises ValueError or Permanent when the mail cannot be built.
    """
    scripted = await run_scripts(render_template(mail, config), config)
    if isinstance(scripted, Stopped):
        return scripted
    recipients = outcome.reconcile(
        recipients,
        (str(to.address) for to in scripted.to),
        note="removed by the outgoing-mail scripts",
        now=utcnow(),
    )
    conversation = None
    if config.conversation.enabled and scripted.case_number is not None:
        conversation = await _conversation_of(rt, scripted.case_number, config)
    content = finish(scripted, config, conversation=conversation)
    # The id stored at the first attempt, even if the From address changed since.
    message = compose(scripted, config, message_id=entry.message_id, content=content)
    return scripted, recipients, content, message


async def _conversation_of(rt: Runtime, case_number: int, config: SystemConfig) -> str | None:
    """The case's conversation reference, given on its first outgoing mail."""
    try:
        return await rt.store.cases.ensure_conversation(
            number=case_number, render=lambda n: conversation_reference(config.conversation, n)
        )
    except NotFound:
        # A case of the surrounding system that Mailroom never saw: no id to keep it by.
        log.warning("no such case, mail goes without conversation id", extra={"case": case_number})
        return None


async def _intercept(
    rt: Runtime,
    mail: OutgoingMail,
    entry: OutboxEntry,
    recipients: list[RecipientDelivery],
    config: SystemConfig,
    content: Content,
    message: EmailMessage,
) -> list[RecipientDelivery]:
    """Keep the mail in the test archive instead of sending it."""
    flavour = config.system.flavour
    await rt.store.test_archive.keep(
        mail=ArchivedMail.model_validate(
            {
                "_id": mail.mail_id,
                "message_id": entry.message_id,
                "case_number": mail.case_number,
                "kind": mail.kind,
                "from": content.from_address,
                "to": mail.to,
                "subject": content.subject,
                "text": content.text,
                "flavour": flavour,
                "raw": message.as_bytes().decode("ascii", "replace"),
                "correlation_id": mail.correlation_id,
            }
        )
    )
    log.info("mail intercepted", extra={"mail_id": mail.mail_id, "flavour": flavour})
    note = f"kept in the test archive: system flavour {flavour!r} is a test-archive flavour"
    return outcome.apply_error(recipients, "intercepted", note, now=utcnow())


async def _record_on_case(
    rt: Runtime, mail: OutgoingMail, entry: OutboxEntry, content: Content, message: EmailMessage
) -> None:
    if mail.case_number is None:
        return
    await rt.store.cases.add_message(
        message=CaseMessage.model_validate(
            {
                "case_number": mail.case_number,
                "direction": "out",
                "message_id": entry.message_id,
                "outbox_id": mail.mail_id,
                "subject": str(message["Subject"]),
                "from": [content.from_address],
                "to": mail.to,
                "date": mail.sent_at,
                "in_reply_to": mail.in_reply_to,
                "references": mail.references,
                "text": content.text,
            }
        )
    )
