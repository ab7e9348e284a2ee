"""Mail over ``processor/max_mail_size_bytes`` is attached without its attachments, with a note."""

from __future__ import annotations

from services.processor.parsing import ParsedMail
from services.processor.scripts import ScriptContext


async def run(mail: ParsedMail, ctx: ScriptContext) -> None:
    """Flag an oversized mail so its attachments are not kept."""
    limit = ctx.config.processor.max_mail_size_bytes
    if mail.size > limit:
        ctx.omit_attachments = True
        ctx.notes.append(
            f"mail is {mail.size} bytes, over the limit of {limit}: attached without its "
            f"{len(mail.attachments)} attachment(s); the raw mail is kept in full"
        )
