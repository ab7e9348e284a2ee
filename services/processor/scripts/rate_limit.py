"""At most ``processor/max_automatic_answers_per_hour`` automatic answers per sender address
(per clock hour: one counter per address and hour, read with one lookup by key).

A last line of defence against loops with systems that send no Auto-Submitted header.
"""

from __future__ import annotations

from services.processor.parsing import ParsedMail
from services.processor.scripts import ScriptContext


async def run(mail: ParsedMail, ctx: ScriptContext) -> None:
    """Suppress the automatic answer when the sender already had its share this hour."""
    target = mail.answer_to
    if target is None or not ctx.acknowledge:
        return
    limit = ctx.config.processor.max_automatic_answers_per_hour
    address = str(target.address).lower()
    sent = await ctx.cases.automatic_answers_this_hour(address)
    if sent >= limit:
        ctx.acknowledge = False
        ctx.notes.append(
            f"{address} had {sent} automatic answers this hour (limit {limit}): no automatic answer"
        )
