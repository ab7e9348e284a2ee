"""At most ``processor/max_automatic_answers_per_hour`` automatic answers per sender address.

A last line of defence against loops with systems that send no Auto-Submitted header.
"""

from __future__ import annotations

from datetime import timedelta

from services.processor.parsing import ParsedMail
from services.processor.scripts import ScriptContext
from shared.models.messages import utcnow


async def run(mail: ParsedMail, ctx: ScriptContext) -> None:
    """Suppress the automatic answer when the sender already had its share this hour."""
    target = mail.answer_to
    if target is None or not ctx.acknowledge:
        return
    limit = ctx.config.processor.max_automatic_answers_per_hour
    address = str(target.address).lower()
    sent = await ctx.cases.automatic_answers_since(address, utcnow() - timedelta(hours=1))
    if sent >= limit:
        ctx.acknowledge = False
        ctx.notes.append(
            f"{address} had {sent} automatic answers in the last hour (limit {limit}): "
            "no automatic answer"
        )
