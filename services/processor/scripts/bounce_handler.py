"""Bounces never open a case: they join the case of the mail they report on, or are dropped.

The mail a bounce reports on is found by VERP first: a bounce delivered to
``local+<outbox id>@domain`` (its To or delivery headers, or the returned mail's Return-Path)
names our outgoing mail exactly, whatever the reporting MTA quotes of it. Otherwise by the
original Message-ID the bounce quotes. A bounce placed either way is attached to that mail's
case and marked on the mail; one we cannot place is dropped with the reason (the raw mail
stays stored). Bounces are never answered. A ``+token`` that is no outbox id of ours (a
customer's plus-address) is ignored.
"""

from __future__ import annotations

from services.processor.parsing import BounceInfo, ParsedMail
from services.processor.scripts import Decision, ScriptContext, our_mail_reported


async def run(mail: ParsedMail, ctx: ScriptContext) -> None:
    """Decide the case of a bounce."""
    if mail.classification != "bounce" or ctx.decision is not None:
        return
    ctx.acknowledge = False
    bounce = mail.bounce or BounceInfo()
    status = f" (status {bounce.status})" if bounce.status else ""
    recipient = f" to {bounce.recipient}" if bounce.recipient else ""
    number, original, how = await our_mail_reported(
        ctx.cases, bounce.verp_tokens, bounce.original_message_id
    )
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
        reason=f"bounce{recipient}{status} for our mail {original} of case {number} ({how})",
    )
