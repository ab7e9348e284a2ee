"""Spam complaints (ARF feedback reports, RFC 5965; Amazon SES complaint notifications) never
open a case and are never answered.

A report is tied to our outgoing mail it reports: by VERP first (the envelope sender
``local+<outbox id>@domain`` it quotes as Original-Mail-From or the reported mail's
Return-Path), else by the reported mail's Message-ID. A tied report joins that mail's case,
the complaint is recorded on the mail, and the complainant's address goes on the suppression
list (no automatic mail to it any more; an operator can take it off: ``mailroom
suppressions``) unless the report says the mail was wanted after all (``not-spam``) or is
about authentication (``auth-failure``). A report we cannot tie goes to the failed-mail desk
with the reason, where an operator decides; nothing is suppressed then, since we cannot tell
whose complaint it is about our mail.
"""

from __future__ import annotations

from services.processor.parsing import ParsedMail
from services.processor.parsing._model import Complaint
from services.processor.scripts import Decision, ScriptContext, our_mail_reported
from shared.errors import MailRejected

# Feedback types (RFC 5965 7.3, RFC 6591) that say a person did not want our mail. A
# "not-spam" report (they took it out of their spam folder) and an "auth-failure" report
# (about our DKIM/SPF, from no person) are recorded on our mail but stop nothing.
STOPS_AUTOMATIC_MAIL = {"abuse", "fraud", "virus", "other"}


async def run(mail: ParsedMail, ctx: ScriptContext) -> None:
    """Tie a complaint to our mail, or send it to the desk."""
    if mail.classification != "complaint":
        return
    ctx.acknowledge = False
    if ctx.decision is not None:  # an earlier script placed it (a second copy of the report)
        return
    complaint = mail.complaint or Complaint()
    who = complaint.complainant or "an unnamed recipient"
    what = f"spam complaint ({complaint.feedback_type}) from {who}"
    number, original, how = await our_mail_reported(
        ctx.cases, complaint.verp_tokens, complaint.original_message_id
    )
    if number is None:
        raise MailRejected(
            f"{what} about a mail we cannot find "
            f"({original or 'the report names no Message-ID'}): complaints never open a case",
            script=ctx.script,
        )
    ctx.complaint_on = original
    stop = complaint.complainant is not None and complaint.feedback_type in STOPS_AUTOMATIC_MAIL
    if stop and complaint.complainant:
        ctx.suppress.append(complaint.complainant)
    suppressed = "; no more automatic mail to them" if stop else ""
    ctx.decision = Decision(
        action="attach",
        rule="references",
        case_number=number,
        reason=f"{what} about our mail {original} of case {number} ({how}){suppressed}",
    )
