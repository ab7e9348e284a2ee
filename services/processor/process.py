"""The processor's domain step: one stored mail → a case decision, applied idempotently.

Crash safety: every step is keyed by the raw mail's id, so a redelivery after a crash at any
point repeats nothing visible — the case is unique per originating raw mail
(``cases.origin_raw_id``), a mail is attached once (``messages.raw_id``), the acknowledgement
and the scripts' mails have a ``mail_id`` derived from the raw id so the sender sends each
once, and attachment bytes are stored under their SHA-256 before the message that names them
(a second run finds the same files; no message names a file that is not complete). Only
events on ``case.#`` may be published twice; they carry the raw id for de-duplication.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from pydantic import BaseModel

from services.processor.deps import ProcessorDeps
from services.processor.marks import MailThread, StoreMarks, copy_note, record_marks
from services.processor.parsing import ParsedMail, parse
from services.processor.pipeline import may_acknowledge, run_scripts
from services.processor.scripts import Decision, ScriptContext, ScriptMail
from services.processor.scripts.size_limit import over_limit
from services.processor.settings import INLINE_PARSE_BYTES
from services.processor.slim import slim
from shared import metrics
from shared.broker import publish_batch
from shared.errors import NotFound, Permanent, Transient
from shared.models.config import SystemConfig
from shared.models.messages import CaseEvent, MailAddress, MailReceived, OutgoingMail, utcnow
from shared.models.records import Attachment, CaseMessage
from shared.store import CaseRepo
from shared.store.cases import latest_case
from shared.topology import CASE_CREATED, CASE_UPDATED, MAIL_OUTGOING

log = logging.getLogger(__name__)


@dataclass
class StoreCaseLookup:
    """Case lookups for scripts, answered from MongoDB."""

    cases: CaseRepo
    thread: MailThread | None = None
    """The mail's thread, read once for this and the earlier-copy lookup (None: ask the store)."""

    async def case_exists(self, number: int) -> bool:
        """True when case ``number`` exists."""
        return await self.cases.get(number=number) is not None

    async def case_of_message_ids(self, message_ids: list[str]) -> int | None:
        """The case holding any of these Message-IDs (the most recent message wins)."""
        found = await self.thread.messages(message_ids) if self.thread and message_ids else None
        if found is not None:
            return latest_case(found)
        return await self.cases.case_of_message_ids(message_ids=message_ids)

    async def case_of_conversation(self, conversation: str) -> int | None:
        """The case a conversation id belongs to."""
        return await self.cases.case_of_conversation(conversation_id=conversation)

    async def participants(self, number: int) -> set[str]:
        """Addresses that took part in case ``number``."""
        return await self.cases.participants(number=number)

    async def automatic_answers_this_hour(self, address: str) -> int:
        """Automatic answers to ``address`` in the current clock hour."""
        return await self.cases.automatic_answers_this_hour(address=address)

    async def outgoing_of(self, outbox_ids: list[str]) -> tuple[int, str | None] | None:
        """The case and Message-ID of our outgoing mail with any of these outbox ids."""
        return await self.cases.outgoing_of(outbox_ids=outbox_ids)


@dataclass(frozen=True)
class Outcome:
    """What processing did with a mail."""

    decision: Decision
    case_number: int | None
    duplicate_delivery: bool = False


async def process_mail(
    deps: ProcessorDeps,
    msg: MailReceived,
    *,
    alone: bool = False,
    inline_parse_bytes: int = INLINE_PARSE_BYTES,
) -> Outcome:
    """Parse, decide and apply; raises Permanent/MailRejected/Transient for the handler.

    ``alone``: the mail is a crash suspect processed by itself (see ``handlers``).
    ``inline_parse_bytes``: mails up to this size are parsed on the event loop.
    """
    config = deps.config  # one snapshot: the size limit must mean the same to parser and scripts
    # A mail the size limit strips is not read whole: it is streamed and slimmed (``slim``).
    max_size = config.processor.max_mail_size_bytes
    record, data = await deps.store.raw_emails.start_attempt(
        raw_id=msg.raw_id, alone=alone, read_up_to=max_size if _slims(config) else None
    )
    if record.status == "processed":  # processed before
        decision = Decision(action="attach", case_number=record.case_number, reason="done before")
        return Outcome(decision, record.case_number, duplicate_delivery=True)
    # Attachments of a mail the size limit strips are never stored: no copy of them is kept.
    contents: list[bytes] | None = None if over_limit(config, record.size) else []
    limit = config.processor.processing_timeout_seconds
    try:
        # Only parsing and the scripts are bounded: a poison mail hangs there, while time
        # spent waiting for a slow MongoDB under load must never send a mail to the desk.
        # A big mail is parsed in a thread so that even a pathological one cannot stall the
        # loop; a small one inline, where the thread hop cost as much as the parse (profiled).
        async with asyncio.timeout(limit):
            if data is None:
                mail = await _parse_slim(deps, record.id, record.size, max_size)
            elif len(data) <= inline_parse_bytes:
                mail = parse(data, contents=contents)
            else:
                mail = await asyncio.to_thread(parse, data, contents=contents)
            del data  # from here on the parsed mail and the attachments are all that is needed
            thread = MailThread.of(deps.store.cases, mail)
            ctx = ScriptContext(
                config=config,
                cases=StoreCaseLookup(deps.store.cases, thread),
                marks=StoreMarks(deps.store, thread),
                raw_id=msg.raw_id,
                account=msg.account,
            )
            decision = await run_scripts(mail, ctx)
    except TimeoutError:
        # The scripts ask MongoDB too: a store that stopped answering is an outage (the ping
        # raises StoreUnavailable), not a mail too slow to process.
        await deps.store.ping()
        raise Permanent(f"parsing and the scripts took longer than {limit:g} s; stopped") from None
    # The first attempt cannot find anything of an earlier one: _apply skips looking for it.
    first = record.attempts == 1
    case_number = await _apply(deps, msg, mail, decision, ctx, contents, first_attempt=first)
    await deps.store.raw_emails.processed(raw_id=msg.raw_id, case_number=case_number)
    log.info(
        "mail processed",
        extra={
            "raw_id": msg.raw_id,
            "correlation_id": msg.correlation_id,
            "action": decision.action,
            "rule": decision.rule,
            "case": case_number,
        },
    )
    metrics.mail_decided(decision.action)
    return Outcome(decision, case_number)


def _slims(config: SystemConfig) -> bool:
    """True when the size limit strips big mail (then a big one is streamed, not read)."""
    return over_limit(config, config.processor.max_mail_size_bytes + 1)


async def _parse_slim(deps: ProcessorDeps, raw_id: str, size: int, max_size: int) -> ParsedMail:
    """Parse a mail over the size limit from its slim copy: parts over the limit are not
    read into memory nor decoded; their attachments keep their size."""
    slimmed = await slim(await deps.store.raw_emails.chunks(raw_id=raw_id), limit=max_size)
    mail = await asyncio.to_thread(parse, slimmed.data, contents=None, size=size)
    left_out = iter(slimmed.omitted)
    pending = next(left_out, None)
    attachments = []
    for attachment in mail.attachments:
        if pending is not None and attachment.size == 0 and attachment.filename == pending.filename:
            attachment = attachment.model_copy(update={"size": pending.size})
            pending = next(left_out, None)
        attachments.append(attachment)
    return mail.model_copy(update={"attachments": attachments})


async def _apply(
    deps: ProcessorDeps,
    msg: MailReceived,
    mail: ParsedMail,
    decision: Decision,
    ctx: ScriptContext,
    contents: list[bytes] | None,
    *,
    first_attempt: bool,
) -> int | None:
    # Every message of the mail goes in one confirm batch once all its writes are done: a
    # crash before the batch is confirmed redelivers the mail, which publishes them all again
    # (outgoing mails under the same mail_id, sent once; events carry the raw id).
    batch: list[tuple[BaseModel, str]] = []
    if decision.action == "drop":
        await _script_mails(deps, msg, mail, ctx.outgoing, None, batch)
        await publish_batch(deps.broker, batch)
        return None
    created = False
    if decision.action == "new_case":
        await _first_copy_or_wait(deps, msg, mail, ctx.config)
        case, created = await deps.store.cases.create_for_raw(
            raw_id=msg.raw_id,
            subject=mail.subject,
            contact=mail.answer_to,
            first_attempt=first_attempt,
        )
        number = case.number
    else:
        assert decision.case_number is not None
        number = decision.case_number
    attachments = await _store_attachments(deps, mail.attachments, contents, ctx.omit_attachments)
    if ctx.bounced_message_id and mail.bounce is not None:
        # Before the bounce is attached: whoever sees it on the case sees our mail marked
        # (a redelivery marks it again, to the same effect).
        await deps.store.cases.mark_bounced(
            message_id=ctx.bounced_message_id, bounce=mail.bounce.model_dump()
        )
    attached = await deps.store.cases.add_message(
        message=_case_message(number, msg, mail, decision, ctx, attachments),
        # A case created just now says it was updated now; a redelivery may find it older.
        touch_case=not created,
        copy=copy_note(mail, ctx),
    )
    # Complaint, suppression, and the copy note when an earlier attempt attached the mail.
    await record_marks(deps.store, mail, ctx, attached_now=attached)
    event = CaseEvent(
        event="created" if decision.action == "new_case" else "updated",
        case_number=number,
        raw_id=msg.raw_id,
        message_id=mail.message_id,
        rule=decision.rule or "",
        reason=decision.reason,
        correlation_id=msg.correlation_id,
    )
    batch.append((event, CASE_CREATED if event.event == "created" else CASE_UPDATED))
    if decision.action == "new_case" and ctx.acknowledge and may_acknowledge(ctx.config, mail):
        ack = _acknowledgement(number, msg, mail)
        await deps.store.cases.record_automatic_answer(
            answer_id=ack.mail_id, address=str(ack.to[0].address)
        )
        batch.append((ack, MAIL_OUTGOING))
    await _script_mails(deps, msg, mail, ctx.outgoing, number, batch)
    await publish_batch(deps.broker, batch)
    return number


async def _first_copy_or_wait(
    deps: ProcessorDeps, msg: MailReceived, mail: ParsedMail, config: SystemConfig
) -> None:
    """Before a mail opens a case: make sure no other copy of it is opening one right now.

    The ``duplicates`` script finds a first copy once that copy is attached; two copies
    processed at the same moment would both find none. The first to get here claims the mail;
    another copy waits (a transient failure, retried by the processor's policy) until the
    holder is processed, and then the script attaches it to the holder's case. A holder that
    failed or is gone hands the claim on, so a copy never waits for a mail on the desk.
    """
    enabled = any(s.name == "duplicates" and s.enabled for s in config.processor.incoming_scripts)
    if not (enabled and mail.message_id and mail.content_digest):
        return
    marks = deps.store.mail_marks
    since = utcnow() - timedelta(hours=config.processor.duplicate_window_hours)
    holder = await marks.claim_first_copy(
        message_id=mail.message_id, digest=mail.content_digest, raw_id=msg.raw_id, since=since
    )
    if holder == msg.raw_id:
        return
    try:
        status = (await deps.store.raw_emails.get(raw_id=holder)).status
    except NotFound:
        status = None
    if status in (None, "failed"):
        await marks.take_copy_claim(
            message_id=mail.message_id, digest=mail.content_digest, holder=holder, raw_id=msg.raw_id
        )
        return
    if status == "processed":
        first = await marks.first_copy(
            message_id=mail.message_id, digest=mail.content_digest, since=since, raw_id=msg.raw_id
        )
        if first is None:
            return  # the holder was attached nowhere (dropped, say): this copy opens the case
    raise Transient(f"another copy of this mail ({holder}) is opening its case: joining it next")


async def _store_attachments(
    deps: ProcessorDeps, listed: list[Attachment], contents: list[bytes] | None, omit: bool
) -> list[Attachment]:
    """The attachment records with the GridFS id of their bytes, or marked omitted.

    The contents are released once stored: the rest of the processing does not hold them.
    """
    if omit or contents is None or len(contents) != len(listed):
        return [a.model_copy(update={"omitted": True}) for a in listed]
    file_ids = await deps.store.cases.attachments.put_many(contents=contents) if contents else []
    contents.clear()
    return [a.model_copy(update={"file_id": f}) for a, f in zip(listed, file_ids, strict=True)]


async def _script_mails(
    deps: ProcessorDeps,
    msg: MailReceived,
    mail: ParsedMail,
    wanted: list[ScriptMail],
    number: int | None,
    batch: list[tuple[BaseModel, str]],
) -> None:
    """Add the mails the scripts asked for to ``batch``, each under an id derived from the
    raw mail.

    Automatic ones never answer a spam complaint and never go to an address on the
    suppression list, whatever the script asked: a script cannot undo either promise.
    """
    for asked in wanted:
        recipients = await _automatic_recipients(deps, mail, asked) if asked.automatic else asked.to
        if not recipients:
            continue
        outgoing = OutgoingMail(
            mail_id=f"script-{msg.raw_id}-{asked.script}-{asked.key}",
            kind=asked.kind,
            automatic=asked.automatic,
            case_number=number,
            to=recipients,
            subject=asked.subject,
            text=asked.text,
            in_reply_to=mail.message_id,
            references=_thread(mail),
            correlation_id=msg.correlation_id,
        )
        if outgoing.automatic:
            for to in outgoing.to:
                await deps.store.cases.record_automatic_answer(
                    answer_id=f"{outgoing.mail_id}:{to.address}", address=str(to.address)
                )
        batch.append((outgoing, MAIL_OUTGOING))


async def _automatic_recipients(
    deps: ProcessorDeps, mail: ParsedMail, asked: ScriptMail
) -> list[MailAddress]:
    """The recipients an automatic script mail may go to."""
    if mail.classification == "complaint":
        log.info("script %s: no automatic mail in answer to a spam complaint", asked.script)
        return []
    listed = await deps.store.suppressions.suppressed(addresses=[str(a.address) for a in asked.to])
    kept = [a for a in asked.to if str(a.address).lower() not in listed]
    if len(kept) < len(asked.to):
        log.info("script %s: no automatic mail to %s (suppression list)", asked.script, listed)
    return kept


def _thread(mail: ParsedMail) -> list[str]:
    """The References of an answer to ``mail``: its own, then its Message-ID (RFC 5322)."""
    return [*mail.references, *([mail.message_id] if mail.message_id else [])][-20:]


def _acknowledgement(number: int, msg: MailReceived, mail: ParsedMail) -> OutgoingMail:
    assert mail.answer_to is not None
    return OutgoingMail(
        mail_id=f"ack-{msg.raw_id}",
        kind="acknowledgement",
        automatic=True,
        case_number=number,
        to=[mail.answer_to],
        subject=mail.subject or "(no subject)",
        # The sender renders subject and text from the acknowledgement template.
        text="",
        template="acknowledgement",
        in_reply_to=mail.message_id,
        references=_thread(mail),
        correlation_id=msg.correlation_id,
    )


def _case_message(
    number: int,
    msg: MailReceived,
    mail: ParsedMail,
    decision: Decision,
    ctx: ScriptContext,
    attachments: list[Attachment],
) -> CaseMessage:
    return CaseMessage.model_validate(
        {
            "case_number": number,
            "direction": "in",
            "message_id": mail.message_id,
            "raw_id": msg.raw_id,
            "subject": mail.subject,
            "from": mail.from_,
            "to": mail.to,
            "cc": mail.cc,
            "date": mail.date,
            "in_reply_to": mail.in_reply_to,
            "references": mail.references,
            "text": mail.text,
            "html": mail.html,
            "attachments": attachments,
            "rule": decision.rule,
            "reason": decision.reason,
            "notes": ctx.notes,
            "classification": mail.classification,
        }
    )
