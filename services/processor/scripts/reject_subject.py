"""Refuse mail whose subject matches ``processor/reject_subject_pattern`` (a quarantine rule).

Refused mail lands on the failed-mail desk with the reason and can be replayed once the
rule is changed or the script disabled.
"""

from __future__ import annotations

import re

from services.processor.parsing import ParsedMail
from services.processor.scripts import ScriptContext
from shared.errors import MailRejected


async def run(mail: ParsedMail, ctx: ScriptContext) -> None:
    """Raise MailRejected when the subject matches the configured pattern."""
    pattern = ctx.config.processor.reject_subject_pattern
    if pattern and re.search(pattern, mail.subject):
        raise MailRejected(
            f"subject {mail.subject!r} matches the reject pattern '{pattern}'",
            script="reject_subject",
        )
