"""A second copy of a mail joins the first copy's case instead of opening another one.

The same mail reaches Mailroom twice when it was sent to two fetched addresses (support@ and
sales@) or delivered twice with one more ``Received`` header. A copy has the same Message-ID
and the same content digest (the author's header fields and the body: trace headers that
differ between copies are not part of it) as a mail processed within
``processor/duplicate_window_hours`` (default 72); it is attached to that mail's case, is not
answered, and both copies keep their account. A mail without a Message-ID is never taken for
a copy. Turn the check off by disabling the ``duplicates`` script.
"""

from __future__ import annotations

from datetime import timedelta

from services.processor.parsing import ParsedMail
from services.processor.scripts import Decision, ScriptContext
from shared.models.messages import utcnow


async def run(mail: ParsedMail, ctx: ScriptContext) -> None:
    """Attach a second copy to the first copy's case."""
    if ctx.decision is not None or not mail.message_id or not mail.content_digest:
        return
    window = timedelta(hours=ctx.config.processor.duplicate_window_hours)
    first = await ctx.marks.first_copy(
        mail.message_id, mail.content_digest, utcnow() - window, ctx.raw_id
    )
    if first is None:
        return
    ctx.acknowledge = False
    ctx.duplicate_of = first
    accounts = f"account {first.account or '?'}, now {ctx.account or 'this account'}"
    ctx.decision = Decision(
        action="attach",
        rule="duplicate",
        case_number=first.case_number,
        reason=f"second copy of {mail.message_id} (first copy {first.raw_id}, {accounts}): "
        f"attached to case {first.case_number}",
    )
