"""Decide the case of a mail: conversation id → subject pattern → In-Reply-To/References →
new case. Each decision records the rule and a reason an operator can read."""

from __future__ import annotations

from services.processor.parsing import ParsedMail
from services.processor.scripts import Decision, ScriptContext
from shared.conversation import find_conversation_id
from shared.models.config import find_case_reference

MATCHES_CASES = True
"""Declares that this script puts mail into cases. A script order in which no enabled script
declares it is refused (every reply would open a new case): see services/config/guards.py."""


async def run(mail: ParsedMail, ctx: ScriptContext) -> None:
    """Set ``ctx.decision`` unless an earlier script already decided."""
    if ctx.decision is not None:
        return
    ctx.decision = (
        await _by_conversation(mail, ctx)
        or await _by_subject(mail, ctx)
        or await _by_references(mail, ctx)
        or Decision(
            action="new_case", rule="new", reason="no case reference, no known referenced mail"
        )
    )


async def _by_conversation(mail: ParsedMail, ctx: ScriptContext) -> Decision | None:
    settings = ctx.config.conversation
    if not settings.enabled:
        return None
    for where, text in (("subject", mail.subject), ("body", mail.text or "")):
        reference = find_conversation_id(settings, text)
        if reference is None:
            continue
        number = await ctx.cases.case_of_conversation(reference)
        if number is not None:
            return Decision(
                action="attach",
                rule="conversation_id",
                case_number=number,
                reason=f"conversation id {reference} in the {where} belongs to case {number}",
            )
        ctx.notes.append(f"conversation id {reference} in the {where} is unknown")
    return None


async def _by_subject(mail: ParsedMail, ctx: ScriptContext) -> Decision | None:
    pattern = ctx.config.settings.incoming_subject_pattern
    reference = find_case_reference(pattern, mail.subject)
    if reference is None:
        return None
    if not (reference.isdigit() and await ctx.cases.case_exists(int(reference))):
        ctx.notes.append(f"subject names case {reference}, which does not exist")
        return None
    number = int(reference)
    # The contact the parser chose (From, else Reply-To, Sender, Return-Path) is who wrote the
    # mail: a From-less reply by a participant must still join the case it names.
    contact = mail.contact
    sender = contact.address.lower() if contact else None
    if ctx.config.processor.non_participant_opens_new_case:
        participants = await ctx.cases.participants(number)
        if sender not in participants:
            return Decision(
                action="new_case",
                rule="new",
                reason=f"subject names case {number}, but {sender or 'the sender'} is not a "
                "participant of it: a new case instead (non_participant_opens_new_case)",
            )
    return Decision(
        action="attach",
        rule="subject_pattern",
        case_number=number,
        reason=f"subject names case {number} (pattern {pattern!r})",
    )


async def _by_references(mail: ParsedMail, ctx: ScriptContext) -> Decision | None:
    ids = [i for i in [mail.in_reply_to, *reversed(mail.references)] if i]
    number = await ctx.cases.case_of_message_ids(ids)
    if number is None:
        return None
    return Decision(
        action="attach",
        rule="references",
        case_number=number,
        reason=f"In-Reply-To/References name a mail of case {number}",
    )
