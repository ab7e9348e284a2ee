"""Bounces never open a case: they join the case of the mail they report on, or are dropped.

A delivery status notification that names one of our outgoing Message-IDs is attached to
that mail's case and marked on it; one we cannot place is dropped with the reason (the raw
mail stays stored). Bounces are never answered.
"""

from __future__ import annotations

from services.processor.parsing import ParsedMail
from services.processor.scripts import Decision, ScriptContext


async def run(mail: ParsedMail, ctx: ScriptContext) -> None:
    """Decide the case of a bounce."""
    if mail.classification != "bounce" or ctx.decision is not None:
        return
    ctx.acknowledge = False
    bounce = mail.bounce
    original = bounce.original_message_id if bounce else None
    status = f" (status {bounce.status})" if bounce and bounce.status else ""
    recipient = f" to {bounce.recipient}" if bounce and bounce.recipient else ""
    number = await ctx.cases.case_of_message_ids([original]) if original else None
    if number is None:
        ctx.decision = Decision(
            action="drop",
            reason=f"bounce{recipient}{status} for a mail we do not know "
            f"({original or 'no original Message-ID'}); bounces never open a case",
        )
        return
    ctx.bounced_message_id = original
    ctx.decision = Decision(
        action="attach",
        rule="references",
        case_number=number,
        reason=f"bounce{recipient}{status} for our mail {original} of case {number}",
    )
