"""Mail over ``processor/max_mail_size_bytes`` is attached without its attachments, with a note.

Their bytes are never stored (the processor does not even keep them while parsing such a
mail, see :func:`over_limit`); the raw mail stays stored in full.
"""

from __future__ import annotations

from services.processor.parsing import ParsedMail
from services.processor.scripts import ScriptContext
from shared.models.config import SystemConfig

NAME = "size_limit"


def over_limit(config: SystemConfig, size: int) -> bool:
    """True when this script is enabled and will strip a mail of ``size`` bytes."""
    enabled = any(s.name == NAME and s.enabled for s in config.processor.incoming_scripts)
    return enabled and size > config.processor.max_mail_size_bytes


async def run(mail: ParsedMail, ctx: ScriptContext) -> None:
    """Flag an oversized mail so its attachments are not kept."""
    limit = ctx.config.processor.max_mail_size_bytes
    if mail.size > limit:
        ctx.omit_attachments = True
        ctx.notes.append(
            f"mail is {mail.size} bytes, over the limit of {limit}: attached without its "
            f"{len(mail.attachments)} attachment(s); the raw mail is kept in full"
        )
