"""Auto-replies (RFC 3834 and the common vendor headers) are attached but never answered."""

from __future__ import annotations

from services.processor.parsing import ParsedMail
from services.processor.scripts import ScriptContext


async def run(mail: ParsedMail, ctx: ScriptContext) -> None:
    """Suppress automatic answers to automatic mail (the classic mail loop)."""
    if mail.classification == "auto_reply":
        ctx.acknowledge = False
        marked = f" ({mail.auto_reply_marker})" if mail.auto_reply_marker else ""
        ctx.notes.append(f"automatic mail{marked}: attached, not answered automatically")
