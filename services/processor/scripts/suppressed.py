"""No automatic answer to an address on the suppression list (a spam complaint put it there,
or an operator did: ``mailroom suppressions``)."""

from __future__ import annotations

from services.processor.parsing import ParsedMail
from services.processor.scripts import ScriptContext


async def run(mail: ParsedMail, ctx: ScriptContext) -> None:
    """Suppress the automatic answer when its address is listed."""
    target = mail.answer_to
    if target is None or not ctx.acknowledge:
        return
    address = str(target.address).lower()
    if await ctx.marks.suppressed([address]):
        ctx.acknowledge = False
        ctx.notes.append(f"{address} is on the suppression list: no automatic answer")
