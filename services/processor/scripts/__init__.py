"""Incoming-mail scripts: the context they share and how they are found.

A script is ``async def run(mail: ParsedMail, ctx: ScriptContext) -> None`` registered under
the entry-point group ``mailroom.incoming_scripts``. Scripts annotate ``ctx`` (a decision, a
note, a mail to send) and never call each other, so their order, given by the
``processor/incoming_scripts`` property, can change safely. A script refuses a mail by raising
``MailRejected``. Nothing a script asks for happens until the processor applies the decision,
so a dry run (``mailroom simulate``) changes nothing.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import entry_points
from typing import Literal, Protocol

from pydantic import BaseModel, Field, field_validator

from services.processor.parsing import ParsedMail
from shared.errors import Permanent
from shared.models.config import SystemConfig
from shared.models.messages import MailAddress
from shared.models.records import ReceivedAddress
from shared.store.mail_marks import FirstCopy

ENTRY_POINT_GROUP = "mailroom.incoming_scripts"

Action = Literal["new_case", "attach", "drop", "reject"]
Rule = Literal["conversation_id", "subject_pattern", "references", "duplicate", "new"]
_MAIL_KEY = re.compile(r"[A-Za-z0-9._-]{1,64}")


class Decision(BaseModel):
    """What happens to a mail, which rule decided it, and why (for operators)."""

    action: Action
    rule: Rule | None = None
    case_number: int | None = None
    reason: str


class CaseLookup(Protocol):
    """What scripts may ask about existing cases."""

    async def case_exists(self, number: int) -> bool:
        """True when case ``number`` exists."""
        ...

    async def case_of_message_ids(self, message_ids: list[str]) -> int | None:
        """The case holding any of these Message-IDs."""
        ...

    async def case_of_conversation(self, conversation: str) -> int | None:
        """The case a conversation id belongs to."""
        ...

    async def participants(self, number: int) -> set[str]:
        """Lower-case addresses that wrote to or were written to by case ``number``."""
        ...

    async def automatic_answers_this_hour(self, address: str) -> int:
        """How many automatic answers went to ``address`` in the current clock hour."""
        ...

    async def outgoing_of(self, outbox_ids: list[str]) -> tuple[int, str | None] | None:
        """The case and Message-ID of our outgoing mail with any of these outbox ids."""
        ...


async def our_mail_reported(
    cases: CaseLookup, verp_tokens: list[str], original_message_id: str | None
) -> tuple[int | None, str | None, str]:
    """The case and Message-ID of our outgoing mail a report (bounce, complaint) is about, and
    how it was found: by its VERP return address first, else by the reported Message-ID."""
    tied = await cases.outgoing_of(verp_tokens) if verp_tokens else None
    if tied is not None:
        return tied[0], tied[1], "found by its VERP return address"
    found = await cases.case_of_message_ids([original_message_id]) if original_message_id else None
    return found, original_message_id, "found by its Message-ID"


class MarkLookup(Protocol):
    """What scripts may ask about the suppression list and earlier copies of a mail."""

    async def suppressed(self, addresses: list[str]) -> set[str]:
        """Which of these addresses (lower-cased) get no automatic mail."""
        ...

    async def first_copy(
        self, message_id: str, digest: str, since: datetime, raw_id: str
    ) -> FirstCopy | None:
        """An earlier copy of this mail (same Message-ID and content digest) since ``since``,
        other than the raw mail ``raw_id``."""
        ...


class NoMarks:
    """A :class:`MarkLookup` that knows nothing: no suppressed address, no earlier copy."""

    async def suppressed(self, addresses: list[str]) -> set[str]:
        """Nothing is suppressed."""
        return set()

    async def first_copy(
        self, message_id: str, digest: str, since: datetime, raw_id: str
    ) -> FirstCopy | None:
        """No earlier copy."""
        return None


class ScriptMail(BaseModel):
    """A mail a script asked to send; sent once the mail is processed."""

    script: str
    key: str
    """Tells apart the mails of one script for one incoming mail (part of the mail's id)."""
    to: list[MailAddress] = Field(min_length=1)
    subject: str
    text: str
    kind: Literal["reply", "notification"] = "reply"
    automatic: bool = True

    @field_validator("to", mode="before")
    @classmethod
    def _received(cls, value: object) -> object:
        # Scripts pass the mail's own addresses (``mail.from_[:1]``): take them as mailboxes.
        if not isinstance(value, list):
            return value
        return [
            {"name": a.name, "address": a.address} if isinstance(a, ReceivedAddress) else a
            for a in value
        ]


@dataclass
class ScriptContext:
    """What a script sees besides the mail, and where it writes its findings."""

    config: SystemConfig
    cases: CaseLookup
    marks: MarkLookup = field(default_factory=NoMarks)
    """The suppression list and earlier copies (knows nothing unless the processor gives it)."""
    decision: Decision | None = None
    notes: list[str] = field(default_factory=list)
    acknowledge: bool = True
    """False once a script decided the mail must not be answered automatically."""
    omit_attachments: bool = False
    """True when the mail is over the size limit: attach it without its attachments."""
    bounced_message_id: str | None = None
    """The Message-ID of our own mail this bounce reports on."""
    outgoing: list[ScriptMail] = field(default_factory=list)
    """Mails the scripts asked to send (see :meth:`send_mail`)."""
    script: str = ""
    """The script running now (set by the pipeline); the mails it sends carry its name."""
    raw_id: str = ""
    """The stored raw mail being processed (empty in a dry run)."""
    account: str = ""
    """The account the mail was fetched from (empty in a dry run)."""
    complaint_on: str | None = None
    """The Message-ID of our own mail a spam complaint reports on (recorded on that mail)."""
    suppress: list[str] = field(default_factory=list)
    """Addresses to put on the suppression list (no automatic mail to them any more)."""
    duplicate_of: FirstCopy | None = None
    """The earlier copy of this mail, when it is a second copy."""

    def send_mail(
        self,
        key: str,
        *,
        to: list[MailAddress] | list[ReceivedAddress],
        subject: str,
        text: str,
        kind: Literal["reply", "notification"] = "reply",
        automatic: bool = True,
    ) -> None:
        """Send a mail, threaded as an answer to this one, once the mail is processed.

        The mail's id derives from the raw mail, the script and ``key`` (letters, digits,
        ``._-``), so a redelivered or replayed mail sends it once; a second mail of the same
        script needs another key. An automatic mail counts against the recipients' automatic
        answers per hour; whether this mail may be answered automatically at all is
        ``self.acknowledge``, and the processor never sends an automatic one in answer to a
        spam complaint nor to an address on the suppression list. The mail's own addresses may
        be passed (``mail.from_[:1]``): those no mail can be sent to (``replyable=False``) are
        left out, with a note, and a mail left without recipients is not sent. Raises
        ValueError for a bad or repeated key.
        """
        if not _MAIL_KEY.fullmatch(key):
            raise ValueError(f"mail key {key!r}: use 1 to 64 letters, digits, '.', '_' or '-'")
        if any(m.script == self.script and m.key == key for m in self.outgoing):
            raise ValueError(f"script {self.script!r} already sends a mail with key {key!r}")
        kept = [a for a in to if not isinstance(a, ReceivedAddress) or a.replyable]
        if len(kept) < len(to):
            left_out = ", ".join(str(a.address) for a in to if a not in kept)
            self.notes.append(f"{self.script}: no mail to {left_out} (no mail can be sent there)")
        if not kept:
            return
        self.outgoing.append(
            ScriptMail(
                script=self.script,
                key=key,
                to=kept,
                subject=subject,
                text=text,
                kind=kind,
                automatic=automatic,
            )
        )


Script = Callable[[ParsedMail, ScriptContext], Awaitable[None]]


@functools.cache
def load_script(name: str) -> Script:
    """The script registered under ``name``; Permanent when none is."""
    for ep in entry_points(group=ENTRY_POINT_GROUP, name=name):
        script: Script = ep.load()
        return script
    raise Permanent(f"incoming-mail script {name!r} is not installed")
