"""Drop recipients nobody reads (``no-reply@``, ``mailer-daemon@`` …); stop the mail when
none is left. Answering such addresses only feeds mail loops and bounces."""

from __future__ import annotations

import re

from services.sender.scripts import OutgoingContext, StopMail
from shared.models.messages import OutgoingMail


async def run(mail: OutgoingMail, ctx: OutgoingContext) -> OutgoingMail:
    """The mail without suppressed recipients (``sender/suppressed_recipients_pattern``)."""
    pattern = ctx.config.sender.suppressed_recipients_pattern
    if pattern is None:
        return mail
    keep = [to for to in mail.to if not re.search(pattern, str(to.address))]
    keep_cc = [cc for cc in mail.cc if not re.search(pattern, str(cc.address))]
    if not keep:
        addresses = ", ".join(str(to.address) for to in mail.to)
        raise StopMail(f"every recipient is suppressed ({addresses})")
    if len(keep) == len(mail.to) and len(keep_cc) == len(mail.cc):
        return mail
    return mail.model_copy(update={"to": keep, "cc": keep_cc})
