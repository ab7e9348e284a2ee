"""The sender's domain step: one ``OutgoingMail`` → sent once per recipient (over SMTP,
Microsoft Graph or JMAP: ``registry`` picks the transport), through the account its case
came in on when that account has its own outgoing server or From settings (``route``), else
through the global connection.

1. Claim the outbox entry (created once per ``mail_id`` with a queued state per recipient;
   every delivery counts an attempt). Nothing pending → return it: a redelivered message
   sends nothing. A failed entry (replayed from the desk) queues its failed recipients again.
2. Record the mail on its case with its Message-ID *before* sending: the customer's reply
   may arrive seconds later, and its In-Reply-To must find the case.
3. Claim the transaction on the entry (``sending_since``) once the transport holds a
   connection, right before the transaction starts.
4. Send to the pending recipients only, then record each recipient's state with the
   server's reply (see ``outcome``) and clear the claim in the same write: 2xx sent, 4xx
   deferred (Transient: retried later for those recipients only), 5xx failed. No recipient
   delivered → Permanent (the desk). Once the server accepted the mail, that record is
   retried while the message stays unacknowledged, however long MongoDB is away: a mail the
   server took is never sent again because its outcome could not be written.

A claim without an outcome is what a sender that stopped mid-transaction leaves (killed, or
its host gone), and what a transport leaves when the connection broke after the whole mail
was handed over and before the server answered (``OutcomeUnknown``: RFC 1047's window, where
Postfix would resend; Graph's ``sendMail`` and JMAP's submission request lost after they
went out are the same window). The mail may or may not have reached the server, and none of
the three protocols offers a way to ask. Decision (a trusted MTA's rule: never deliver
twice on a guess, never drop silently):

- a claim younger than the transaction can last (connect + send timeouts, twice) may be
  another instance still sending: the mail is retried later (Transient);
- an older one is *checked*, not sent: its pending recipients become ``unknown`` ("possibly
  sent"), the mail goes to the desk with the Message-ID so an operator can look it up in the
  server's log (or the mailbox's Sent folder), and only an operator's replay sends it again.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from email.message import EmailMessage

from services.sender import outcome
from services.sender.compose import compose, derive_message_id
from services.sender.content import Content, finish, render_template
from services.sender.deps import SenderDeps
from services.sender.route import account_of, routed
from services.sender.scripts import Stopped, run_scripts
from services.sender.smtp import effective_connection
from services.sender.transport import OutcomeUnknown, OutgoingTransport
from shared import metrics
from shared.conversation import conversation_reference
from shared.errors import NotFound, Permanent, Transient
from shared.models.config import OutgoingConnection, SystemConfig
from shared.models.messages import OutgoingMail, utcnow
from shared.models.records import (
    ArchivedMail,
    CaseMessage,
    OutboxEntry,
    RecipientDelivery,
    RecipientState,
)
from shared.retry import StagePolicy, until_available

log = logging.getLogger(__name__)


RECORD_POLICY = StagePolicy(first_delay_s=1, cap_s=30)
"""How the outcome of a sent mail is retried while MongoDB is away: without limit, often
(the message is held meanwhile)."""


async def deliver(
    deps: SenderDeps, mail: OutgoingMail, transport: OutgoingTransport
) -> OutboxEntry:
    """Send ``mail`` to every recipient that has not got it yet; return its outbox entry.

    Raises Transient (some recipient deferred: retry later) or Permanent (no recipient
    can get it); the entry records why before either is raised.
    """
    config = deps.config()  # one snapshot for the whole delivery, however the broadcast races it
    # The account the case's mail came in on: its outgoing server and From settings apply.
    config = routed(config, await account_of(deps.repos().cases, mail, config))
    entry = await _claim(deps, mail, config)
    recipients = entry.recipients or outcome.initial_recipients(
        str(a.address) for a in mail.recipients
    )
    if entry.status == "failed":  # replayed from the desk: try the failed ones again
        recipients = outcome.reopen(recipients)
    todo = outcome.pending(recipients)
    if not todo:
        log.info("mail already delivered", extra={"mail_id": mail.mail_id})
        return entry
    if entry.sending_since is not None and entry.status != "failed":
        await _check_claim(deps, entry, recipients, effective_connection(config))
    # A stop while the transaction runs (SIGTERM, the broker's channel gone) cancels this
    # task: the transaction still ends and its outcome is written, so the redelivery finds
    # it, not a claim whose outcome is unknown ("possibly sent" on the desk for a restart).
    # A second cancellation stops waiting; only a kill leaves the claim for the check.
    finishing = asyncio.ensure_future(
        _send_and_record(deps, mail, entry, recipients, config, transport)
    )
    try:
        done, summary = await asyncio.shield(finishing)
    except asyncio.CancelledError:
        await finishing
        raise
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


async def _send_and_record(
    deps: SenderDeps,
    mail: OutgoingMail,
    entry: OutboxEntry,
    recipients: list[RecipientDelivery],
    config: SystemConfig,
    transport: OutgoingTransport,
) -> tuple[OutboxEntry, outcome.Summary]:
    """Send, then record each recipient's state (held until MongoDB takes it)."""
    recipients = await _send(deps, mail, entry, recipients, config, transport)
    summary = outcome.summarise(recipients)

    async def record() -> OutboxEntry:
        return await deps.repos().outbox.record(
            entry=entry,
            status=summary.status,
            recipients=recipients,
            error=summary.error,
            smtp_reply=next((r.reply for r in recipients if r.state == "sent"), None),
            sending_since=None,
        )

    # Held (the message unacknowledged) until written: a redelivery must find it sent.
    done = await until_available("MongoDB", "the outbox", record, policy=RECORD_POLICY)
    return done, summary


async def _check_claim(
    deps: SenderDeps,
    entry: OutboxEntry,
    recipients: list[RecipientDelivery],
    connection: OutgoingConnection | None,
) -> None:
    """An earlier attempt claimed the SMTP transaction and recorded no outcome: retry later
    while it may still be running, else mark its recipients ``unknown`` and raise Permanent
    (see the module docstring). Never returns."""
    assert entry.sending_since is not None
    timeouts = (connection.connect_timeout_ms + connection.send_timeout_ms) if connection else 0
    grace = timedelta(milliseconds=2 * timeouts) or timedelta(minutes=2)
    if utcnow() - entry.sending_since < grace:
        raise Transient("an earlier attempt may still be sending this mail; checked again later")
    note = (
        f"possibly sent: an attempt stopped during its SMTP transaction at "
        f"{entry.sending_since:%Y-%m-%d %H:%M:%S} UTC and its outcome is unknown; look for "
        f"Message-ID {entry.message_id} in the SMTP server's log; a replay sends it again"
    )
    after = outcome.apply_error(recipients, "unknown", note, now=utcnow())
    await deps.repos().outbox.record(
        entry=entry, status="failed", recipients=after, error=note, sending_since=None
    )
    raise Permanent(note)


async def _claim(deps: SenderDeps, mail: OutgoingMail, config: SystemConfig) -> OutboxEntry:
    return await deps.repos().outbox.claim(
        entry=OutboxEntry(
            id=mail.mail_id,
            message_id=derive_message_id(
                mail.mail_id, str((mail.from_address or config.addresses.from_address).address)
            ),
            case_number=mail.case_number,
            kind=mail.kind,
            to=mail.to,
            cc=mail.cc,
            subject=mail.subject,
            correlation_id=mail.correlation_id,
            recipients=outcome.initial_recipients(str(a.address) for a in mail.recipients),
        )
    )


async def _send(
    deps: SenderDeps,
    mail: OutgoingMail,
    entry: OutboxEntry,
    recipients: list[RecipientDelivery],
    config: SystemConfig,
    transport: OutgoingTransport,
) -> list[RecipientDelivery]:
    """Build and send the mail to the pending recipients; their new states.

    A failure of the whole transaction becomes the state of every pending recipient
    (Transient → deferred, Permanent → failed). Failures before anything could be sent are
    recorded on the entry and raised.
    """

    async def fail_all(state: RecipientState, error: str) -> None:
        after = outcome.apply_error(recipients, state, error, now=utcnow())
        summary = outcome.summarise(after)
        await deps.repos().outbox.record(
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
        built = await _build(deps, mail, entry, recipients, config)
    except (ValueError, Permanent, NotFound) as exc:  # From not allowed, a template or script
        # failing, an attachment's file gone
        await fail_all("failed", str(exc))
        raise Permanent(str(exc)) from exc
    if isinstance(built, Stopped):
        log.info("mail stopped", extra={"mail_id": mail.mail_id, "reason": str(built)})
        return outcome.apply_error(recipients, "stopped", str(built), now=utcnow())
    mail, recipients, content, message = built
    await _record_on_case(deps, mail, entry, content, message)
    if intercept:
        return await _intercept(deps, mail, entry, recipients, config, content, message)
    assert connection is not None

    async def claim() -> None:
        await deps.repos().outbox.claim_send(mail_id=entry.id)

    try:
        reply = await transport.send(
            message, connection, outcome.pending(recipients), starting=claim
        )
    except OutcomeUnknown:
        raise  # the claim stays without an outcome: the redelivery checks it, never resends
    except Transient as exc:
        return outcome.apply_error(recipients, "deferred", str(exc), now=utcnow())
    except Permanent as exc:
        return outcome.apply_error(recipients, "failed", str(exc), now=utcnow())
    return outcome.apply_reply(recipients, reply, now=utcnow())


Built = tuple[OutgoingMail, list[RecipientDelivery], Content, EmailMessage]


async def _build(
    deps: SenderDeps,
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
        (str(to.address) for to in scripted.recipients),
        note="removed by the outgoing-mail scripts",
        now=utcnow(),
    )
    conversation = None
    if config.conversation.enabled and scripted.case_number is not None:
        conversation = await _conversation_of(deps, scripted.case_number, config)
    content = finish(scripted, config, conversation=conversation)
    files = [
        await deps.repos().cases.attachments.read(file_id=a.file_id) for a in scripted.attachments
    ]
    # The id stored at the first attempt, even if the From address changed since.
    message = compose(scripted, config, message_id=entry.message_id, content=content, files=files)
    return scripted, recipients, content, message


async def _conversation_of(deps: SenderDeps, case_number: int, config: SystemConfig) -> str | None:
    """The case's conversation reference, given on its first outgoing mail."""
    try:
        return await deps.repos().cases.ensure_conversation(
            number=case_number, render=lambda n: conversation_reference(config.conversation, n)
        )
    except NotFound:
        # A case of the surrounding system that Mailroom never saw: no id to keep it by.
        log.warning("no such case, mail goes without conversation id", extra={"case": case_number})
        return None


async def _intercept(
    deps: SenderDeps,
    mail: OutgoingMail,
    entry: OutboxEntry,
    recipients: list[RecipientDelivery],
    config: SystemConfig,
    content: Content,
    message: EmailMessage,
) -> list[RecipientDelivery]:
    """Keep the mail in the test archive instead of sending it."""
    flavour = config.system.flavour
    await deps.repos().test_archive.keep(
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
    deps: SenderDeps,
    mail: OutgoingMail,
    entry: OutboxEntry,
    content: Content,
    message: EmailMessage,
) -> None:
    if mail.case_number is None:
        return
    await deps.repos().cases.add_message(
        # An acknowledgement answers the mail that opened its case a moment ago, which set
        # the case's updated_at already: touching it again costs a write per new case and
        # tells nobody anything (every other outgoing mail does touch it).
        touch_case=mail.kind != "acknowledgement",
        message=CaseMessage.model_validate(
            {
                "case_number": mail.case_number,
                "direction": "out",
                "message_id": entry.message_id,
                "outbox_id": mail.mail_id,
                "subject": str(message["Subject"]),
                "from": [content.from_address],
                "to": mail.to,
                "cc": mail.cc,
                "date": mail.sent_at,
                "in_reply_to": mail.in_reply_to,
                "references": mail.references,
                "text": content.text,
                "html": mail.html,
                "attachments": [a.model_dump() for a in mail.attachments],
            }
        ),
    )
