"""Decide the case of a mail: subject pattern → In-Reply-To/References → new case.

Each decision records the rule and a reason an operator can read.
"""

from __future__ import annotations

from services.processor.parsing import ParsedMail
from services.processor.scripts import Decision, ScriptContext
from shared.models.config import find_case_reference


async def run(mail: ParsedMail, ctx: ScriptContext) -> None:
    """Set ``ctx.decision`` unless an earlier script already decided."""
    if ctx.decision is not None:
        return
    ctx.decision = await match(mail, ctx)


async def match(mail: ParsedMail, ctx: ScriptContext) -> Decision:
    """The matching decision for ``mail``."""
    pattern = ctx.config.settings.incoming_subject_pattern
    reference = find_case_reference(pattern, mail.subject)
    if reference is not None:
        if reference.isdigit() and await ctx.cases.case_exists(int(reference)):
            return Decision(
                action="attach",
                rule="subject_pattern",
                case_number=int(reference),
                reason=f"subject names case {reference} (pattern {pattern!r})",
            )
        ctx.notes.append(f"subject names case {reference}, which does not exist")
    ids = [i for i in [mail.in_reply_to, *reversed(mail.references)] if i]
    number = await ctx.cases.case_of_message_ids(ids)
    if number is not None:
        return Decision(
            action="attach",
            rule="references",
            case_number=number,
            reason=f"In-Reply-To/References name a mail of case {number}",
        )
    return Decision(
        action="new_case", rule="new", reason="no case reference, no known referenced mail"
    )
