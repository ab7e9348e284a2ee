"""The store behind the scripts' :class:`MarkLookup`, and recording what scripts found.

Scripts only ask (suppressed addresses, earlier copies) and note in the context what should be
recorded; :func:`record_marks` writes it once the mail is attached, so a dry run
(``mailroom simulate``) changes nothing. Every write is idempotent: a redelivered mail repeats
them with the same result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.processor.parsing import ParsedMail
from services.processor.scripts import ScriptContext
from shared.store import Store
from shared.store.mail_marks import CopyNote, FirstCopy


@dataclass
class StoreMarks:
    """Suppression list and earlier copies, answered from MongoDB."""

    store: Store

    async def suppressed(self, addresses: list[str]) -> set[str]:
        """Which of these addresses get no automatic mail."""
        return await self.store.suppressions.suppressed(addresses=addresses)

    async def first_copy(
        self, message_id: str, digest: str, since: datetime, raw_id: str
    ) -> FirstCopy | None:
        """An earlier copy of this mail since ``since``."""
        return await self.store.mail_marks.first_copy(
            message_id=message_id, digest=digest, since=since, raw_id=raw_id
        )


def copy_note(mail: ParsedMail, ctx: ScriptContext) -> CopyNote:
    """Where the mail came from and the copy it repeats, written with the attached mail."""
    duplicate_of = ctx.duplicate_of.raw_id if ctx.duplicate_of else None
    return CopyNote(account=ctx.account, digest=mail.content_digest, duplicate_of=duplicate_of)


async def record_marks(
    store: Store, mail: ParsedMail, ctx: ScriptContext, *, attached_now: bool
) -> None:
    """Record what the scripts found about an attached mail (call after it is attached).

    ``attached_now``: the mail was attached by this attempt, with its :func:`copy_note`; a
    mail attached by an earlier attempt gets the note again (the same fields).
    """
    marks = store.mail_marks
    if not attached_now:
        await marks.note_copy(raw_id=ctx.raw_id, note=copy_note(mail, ctx))
    if ctx.complaint_on and mail.complaint is not None:
        await marks.record_complaint(
            message_id=ctx.complaint_on, complaint=mail.complaint.model_dump()
        )
    for address in ctx.suppress:
        reason = f"spam complaint about our mail {ctx.complaint_on or ''}".strip()
        await store.suppressions.add(address=address, reason=reason, source="complaint")
