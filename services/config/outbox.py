"""The outbox as operators and the case system see it: every outgoing mail, newest first,
with what became of it per recipient (queued, sent with the server's answer, deferred with
the next attempt, failed with the refusal, bounced with the DSN), its retries and its case.

The API and the console both read it through these functions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from shared.errors import NotFound
from shared.models.messages import MailAddress
from shared.models.records import CaseMessage, OutboxEntry, OutboxStatus, RecipientState
from shared.runtime import Runtime
from shared.store.outbox import OutboxQuery, cursor_of, parse_cursor

CURSOR_PATTERN = r"^[0-9]{1,15}\.[^\s]{0,100}$"
"""What a cursor of the outbox list looks like (milliseconds, a dot, a mail id)."""
OutboxFilter = Literal["queued", "deferred", "sent", "failed", "intercepted", "stopped"]
"""What the list filters on: a mail's status, or ``deferred`` (a recipient waits for a retry)."""


class RecipientOut(BaseModel):
    """One recipient of an outgoing mail and what became of the mail for them."""

    address: str
    state: RecipientState | Literal["bounced"]
    """``bounced``: the server took the mail, and a bounce (DSN) reported it undelivered."""
    reply: str | None
    """The server's answer (sent: its 2xx; deferred: the 4xx or error; failed: the 5xx)."""
    attempts: int
    updated_at: datetime | None
    next_attempt_at: datetime | None
    """When a deferred recipient is tried again."""
    bounce: dict[str, Any] | None
    """The DSN as read: status, action, diagnostic, the remote server's reply."""


class OutboxSummary(BaseModel):
    """An outgoing mail in the list."""

    mail_id: str
    message_id: str
    case_number: int | None
    kind: str
    to: list[MailAddress]
    subject: str
    status: OutboxStatus
    recipients: dict[str, int]
    """How many recipients are in each state."""
    attempts: int
    created_at: datetime
    sent_at: datetime | None

    @classmethod
    def of(cls, entry: OutboxEntry) -> OutboxSummary:
        """The summary of a stored entry."""
        counts: dict[str, int] = {}
        for r in entry.recipients:
            counts[r.state] = counts.get(r.state, 0) + 1
        return cls(
            mail_id=entry.id,
            message_id=entry.message_id,
            case_number=entry.case_number,
            kind=entry.kind,
            to=entry.to,
            subject=entry.subject,
            status=entry.status,
            recipients=counts,
            attempts=entry.attempts,
            created_at=entry.created_at,
            sent_at=entry.sent_at,
        )


class OutboxPage(BaseModel):
    """A page of the outbox, newest first; ``next`` is the cursor of the next page."""

    items: list[OutboxSummary]
    next: str | None


class OutboxDetail(OutboxSummary):
    """One outgoing mail with the state of each recipient."""

    cc: list[MailAddress]
    retries: int
    """Deliveries after the first (``attempts`` minus 1)."""
    error: str | None
    smtp_reply: str | None
    next_attempt_at: datetime | None
    delivery: list[RecipientOut]
    bounce: dict[str, Any] | None
    complaint: dict[str, Any] | None
    case_link: str | None
    """The API path of the mail's case thread."""


async def outbox_page(
    rt: Runtime,
    *,
    status: OutboxFilter | None = None,
    case_number: int | None = None,
    recipient: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> OutboxPage:
    """A page of the outbox; ``after`` is the ``next`` of the previous page (a string of
    :data:`CURSOR_PATTERN`, which the routes check)."""
    before = parse_cursor(after) if after else None
    query = OutboxQuery(
        status="queued" if status == "deferred" else status,
        deferred=status == "deferred",
        case_number=case_number,
        recipient=recipient.strip() if recipient else None,
        before=before,
    )
    entries, below = await rt.store.outbox.page(query=query, limit=limit)
    more = cursor_of(below) if below else None
    return OutboxPage(items=[OutboxSummary.of(e) for e in entries], next=more)


def delivery_of(entry: OutboxEntry, sent: CaseMessage | None) -> list[RecipientOut]:
    """Each recipient's state; a bounce reported on the mail marks the recipient it names
    (every recipient the server took, when it names none we know)."""
    bounce = sent.bounce if sent else None
    named = str((bounce or {}).get("recipient") or "").lower()
    names = {r.address.lower() for r in entry.recipients}
    out = []
    for r in entry.recipients:
        bounced = (
            bounce is not None
            and r.state == "sent"
            and (r.address.lower() == named or named not in names)
        )
        out.append(
            RecipientOut(
                address=r.address,
                state="bounced" if bounced else r.state,
                reply=r.reply,
                attempts=r.attempts,
                updated_at=r.updated_at,
                next_attempt_at=entry.next_attempt_at if r.state == "deferred" else None,
                bounce=bounce if bounced else None,
            )
        )
    return out


def detail_of(entry: OutboxEntry, sent: CaseMessage | None) -> OutboxDetail:
    """The whole story of one entry, with its recorded mail's bounce and complaint."""
    summary = OutboxSummary.of(entry).model_dump()
    delivery = delivery_of(entry, sent)
    counts: dict[str, int] = {}
    for r in delivery:
        counts[r.state] = counts.get(r.state, 0) + 1
    return OutboxDetail(
        **{**summary, "recipients": counts},
        cc=entry.cc,
        retries=max(entry.attempts - 1, 0),
        error=entry.error,
        smtp_reply=entry.smtp_reply,
        next_attempt_at=entry.next_attempt_at,
        delivery=delivery,
        bounce=sent.bounce if sent else None,
        complaint=sent.complaint if sent else None,
        case_link=f"/cases/{entry.case_number}" if entry.case_number is not None else None,
    )


async def outbox_detail(rt: Runtime, *, mail_id: str) -> OutboxDetail:
    """One outgoing mail; NotFound when there is none with that id."""
    entry = await rt.store.outbox.get(mail_id=mail_id)
    if entry is None:
        raise NotFound(f"no outgoing mail {mail_id}")
    return detail_of(entry, await rt.store.cases.sent_message(outbox_id=mail_id))
