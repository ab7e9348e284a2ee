"""Append the configured signature (``sender/signature``) to the text of every mail."""

from __future__ import annotations

from services.sender.scripts import OutgoingContext
from shared.models.messages import OutgoingMail

SEPARATOR = "\n-- \n"
"""RFC 3676's signature separator: mail clients know to fold or strip what follows."""


async def run(mail: OutgoingMail, ctx: OutgoingContext) -> OutgoingMail:
    """The mail with the signature appended, once (a retried mail is built afresh)."""
    signature = ctx.config.sender.signature.strip("\n")
    if not signature:
        return mail
    return mail.model_copy(update={"text": f"{mail.text.rstrip()}\n{SEPARATOR}{signature}\n"})
