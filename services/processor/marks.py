"""The store behind the scripts' :class:`MarkLookup`, and recording what scripts found.

Scripts only ask (suppressed addresses, earlier copies) and note in the context what should be
recorded; :func:`record_marks` writes it once the mail is attached, so a dry run
(``mailroom simulate``) changes nothing. Every write is idempotent: a redelivered mail repeats
them with the same result.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from services.processor.parsing import ParsedMail
from services.processor.scripts import ScriptContext
from shared.store import CaseRepo, Store
from shared.store.cases import ThreadMessage
from shared.store.mail_marks import CopyNote, FirstCopy, first_copy_among

THREAD_LIMIT = 100
"""Messages one thread read takes; a longer thread is asked about precisely."""


@dataclass
class MailThread:
    """The stored messages bearing a mail's own Message-ID or one it refers to, read once.

    The case matcher asks for the case of In-Reply-To/References, the duplicates script for an
    earlier copy under the mail's own Message-ID: one read answers both (a follow-up took two
    reads of ``messages``). The scripts run before the mail writes anything, so one snapshot
    serves them as well as reads a moment apart. Asked about other ids, or when the thread is
    longer than ``THREAD_LIMIT``, the lookups read the store as before.
    """

    cases: CaseRepo
    ids: frozenset[str]
    _read: list[ThreadMessage] | None = None
    _loaded: bool = False

    @classmethod
    def of(cls, cases: CaseRepo, mail: ParsedMail) -> MailThread:
        """The thread of ``mail``: its Message-ID, In-Reply-To and References."""
        ids = (mail.message_id, mail.in_reply_to, *mail.references)
        return cls(cases, frozenset(i for i in ids if i))

    async def messages(self, ids: Iterable[str]) -> list[ThreadMessage] | None:
        """The stored messages with these ids; None when the thread cannot answer."""
        wanted = set(ids)
        if not wanted <= self.ids:
            return None
        if not self._loaded:
            self._read = await self.cases.messages_with_ids(
                message_ids=sorted(self.ids), limit=THREAD_LIMIT
            )
            self._loaded = True
        if self._read is None:
            return None
        return [m for m in self._read if m.message_id in wanted]


@dataclass
class StoreMarks:
    """Suppression list and earlier copies, answered from MongoDB."""

    store: Store
    thread: MailThread | None = None
    """The mail's thread, read once for this and the case lookups (None: ask the store)."""

    async def suppressed(self, addresses: list[str]) -> set[str]:
        """Which of these addresses get no automatic mail."""
        return await self.store.suppressions.suppressed(addresses=addresses)

    async def first_copy(
        self, message_id: str, digest: str, since: datetime, raw_id: str
    ) -> FirstCopy | None:
        """An earlier copy of this mail since ``since``."""
        found = await self.thread.messages([message_id]) if self.thread else None
        if found is not None:
            return first_copy_among(found, digest=digest, since=since, raw_id=raw_id)
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
