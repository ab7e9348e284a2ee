"""The processor's domain step: one stored mail → a case decision, applied idempotently.

Crash safety: every step is keyed by the raw mail's id, so a redelivery after a crash at any
point repeats nothing visible — the case is unique per originating raw mail
(``cases.origin_raw_id``), a mail is attached once (``messages.raw_id``), and the
acknowledgement's ``mail_id`` is derived from the raw id so the sender sends it once. Only
events on ``case.#`` may be published twice; they carry the raw id for de-duplication.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from services.processor.parsing import ParsedMail, parse
from services.processor.pipeline import run_scripts
from services.processor.scripts import Decision, ScriptContext
from shared.broker import publish
from shared.models.messages import CaseEvent, MailReceived, OutgoingMail
from shared.models.records import CaseMessage
from shared.runtime import Runtime
from shared.store import CaseRepo
from shared.topology import CASE_CREATED, CASE_UPDATED, MAIL_OUTGOING

log = logging.getLogger(__name__)

ACK_TEXT = (
    "Thank you for your message. It was registered as case {case}.\n"
    "Please keep the case reference in the subject when you reply, so that your answer "
    "reaches the same case.\n"
)


@dataclass
class StoreCaseLookup:
    """Case lookups for scripts, answered from MongoDB."""

    cases: CaseRepo

    async def case_exists(self, number: int) -> bool:
        """True when case ``number`` exists."""
        return await self.cases.get(number=number) is not None

    async def case_of_message_ids(self, message_ids: list[str]) -> int | None:
        """The case holding any of these Message-IDs."""
        return await self.cases.case_of_message_ids(message_ids=message_ids)


@dataclass(frozen=True)
class Outcome:
    """What processing did with a mail."""

    decision: Decision
    case_number: int | None
    duplicate_delivery: bool = False


async def process_mail(rt: Runtime, msg: MailReceived) -> Outcome:
    """Parse, decide and apply; raises Permanent/MailRejected/Transient for the handler."""
    record = await rt.store.raw_emails.start_attempt(raw_id=msg.raw_id)
    if record.status == "processed":
        decision = Decision(action="attach", case_number=record.case_number, reason="done before")
        return Outcome(decision, record.case_number, duplicate_delivery=True)
    mail = parse(await rt.store.raw_emails.data(raw_id=msg.raw_id))
    ctx = ScriptContext(config=rt.config, cases=StoreCaseLookup(rt.store.cases))
    decision = await run_scripts(mail, ctx)
    case_number = await _apply(rt, msg, mail, decision, ctx)
    await rt.store.raw_emails.set_status(
        raw_id=msg.raw_id, status="processed", case_number=case_number, error=None
    )
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
    return Outcome(decision, case_number)


async def _apply(
    rt: Runtime, msg: MailReceived, mail: ParsedMail, decision: Decision, ctx: ScriptContext
) -> int | None:
    if decision.action == "drop":
        return None
    if decision.action == "new_case":
        case, _ = await rt.store.cases.create_for_raw(
            raw_id=msg.raw_id, subject=mail.subject, contact=mail.answer_to
        )
        number = case.number
    else:
        assert decision.case_number is not None
        number = decision.case_number
    await rt.store.cases.add_message(message=_case_message(number, msg, mail, decision))
    event = CaseEvent(
        event="created" if decision.action == "new_case" else "updated",
        case_number=number,
        raw_id=msg.raw_id,
        message_id=mail.message_id,
        rule=decision.rule or "",
        reason=decision.reason,
        correlation_id=msg.correlation_id,
    )
    key = CASE_CREATED if event.event == "created" else CASE_UPDATED
    await publish(rt.broker, event, routing_key=key, mandatory=False)
    if decision.action == "new_case" and _should_acknowledge(rt, mail, ctx):
        await publish(rt.broker, _acknowledgement(number, msg, mail), routing_key=MAIL_OUTGOING)
    return number


def _should_acknowledge(rt: Runtime, mail: ParsedMail, ctx: ScriptContext) -> bool:
    # Never answer automatic mail: two systems acknowledging each other is a mail loop.
    return (
        rt.config.processor.acknowledge_new_cases
        and ctx.acknowledge
        and mail.classification == "normal"
        and mail.answer_to is not None
    )


def _acknowledgement(number: int, msg: MailReceived, mail: ParsedMail) -> OutgoingMail:
    assert mail.answer_to is not None
    references = [*mail.references, *([mail.message_id] if mail.message_id else [])]
    return OutgoingMail(
        mail_id=f"ack-{msg.raw_id}",
        kind="acknowledgement",
        automatic=True,
        case_number=number,
        to=[mail.answer_to],
        subject=mail.subject or "(no subject)",
        text=ACK_TEXT.format(case=number),
        in_reply_to=mail.message_id,
        references=references[-20:],
        correlation_id=msg.correlation_id,
    )


def _case_message(
    number: int, msg: MailReceived, mail: ParsedMail, decision: Decision
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
            "attachments": mail.attachments,
            "rule": decision.rule,
            "reason": decision.reason,
        }
    )
