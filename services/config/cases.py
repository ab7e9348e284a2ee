"""Cases as operators and the case system see them: the list with its search, and a case's
thread — every mail in and out, the rule that routed each incoming mail, per-recipient
delivery of each outgoing one, attachments with their download paths, bounces and
auto-replies marked.

The API and the console both read them through these functions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.config.outbox import RecipientOut, delivery_of
from shared.errors import NotFound
from shared.models.records import (
    Attachment,
    Case,
    CaseMessage,
    MailKind,
    OutboxEntry,
    OutboxStatus,
    ReceivedAddress,
)
from shared.runtime import Runtime
from shared.store.cases import CaseQuery
from shared.store.outbox import OutboxQuery

THREAD_LIMIT = 1000
"""At most this many mails of a case are shown (the oldest first)."""


class CasePage(BaseModel):
    """A page of cases, newest first. ``next`` is the ``before`` of the next page (None:
    no more); ``searched_to`` is the lowest case number a subject or participant search
    looked at (a search reads a bounded range of numbers per page)."""

    items: list[Case]
    next: int | None
    searched_to: int | None


class AttachmentOut(BaseModel):
    """An attachment of a mail of the thread and where to download it."""

    filename: str | None
    content_type: str
    size: int
    omitted: bool
    """The mail was over the size limit: its bytes were not kept (the raw mail has them)."""
    download: str | None
    """The API path of its bytes; None when they were not kept."""


class ThreadMail(BaseModel):
    """One mail of a case's thread."""

    model_config = ConfigDict(populate_by_name=True)

    direction: Literal["in", "out"]
    at: datetime
    """When Mailroom attached it to the case (received) or queued it (sent)."""
    kind: MailKind | Literal["acknowledgement", "reply", "notification"] | None
    """Incoming: ``normal``, ``auto_reply``, ``bounce`` or ``complaint`` (None: stored before
    it was recorded); outgoing: the kind of mail we sent."""
    message_id: str | None
    raw_id: str | None
    outbox_id: str | None
    subject: str
    from_: list[ReceivedAddress] = Field(alias="from")
    to: list[ReceivedAddress]
    cc: list[ReceivedAddress]
    date: datetime | None
    text: str | None
    html: str | None
    attachments: list[AttachmentOut]
    rule: str | None
    """Incoming: the rule that routed it (``new``, ``subject_pattern``, ``references`` …)."""
    reason: str | None
    notes: list[str]
    status: OutboxStatus | None
    """Outgoing: the mail's delivery status."""
    delivery: list[RecipientOut]
    """Outgoing: each recipient's state."""
    bounce: dict[str, Any] | None
    complaint: dict[str, Any] | None


class CaseThread(BaseModel):
    """A case and every mail in and out, oldest first."""

    case: Case
    mails: list[ThreadMail]


async def case_page(
    rt: Runtime,
    *,
    subject: str | None = None,
    participant: str | None = None,
    number: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: int | None = None,
    limit: int = 50,
) -> CasePage:
    """A page of cases matching the filter; ``number`` finds one case (or none). A time
    without a zone is UTC."""
    since, until = _utc(since), _utc(until)
    if number is not None:
        case = await rt.store.cases.get(number=number)
        found = case is not None and _matches(case, subject, since, until, before)
        return CasePage(items=[case] if found and case else [], next=None, searched_to=None)
    query = CaseQuery(
        subject=subject.strip() or None if subject else None,
        participant=participant.strip() or None if participant else None,
        since=since,
        until=until,
        before=before,
    )
    page = await rt.store.cases.page(query=query, limit=limit)
    return CasePage(items=page.cases, next=page.next, searched_to=page.searched_to)


def _utc(at: datetime | None) -> datetime | None:
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def _matches(
    case: Case,
    subject: str | None,
    since: datetime | None,
    until: datetime | None,
    before: int | None,
) -> bool:
    """Whether a case found by number passes the other filters too."""
    return (
        (not subject or subject.strip().lower() in case.subject.lower())
        and (since is None or case.created_at >= since)
        and (until is None or case.created_at < until)
        and (before is None or case.number < before)
    )


def _attachments(message: CaseMessage) -> list[AttachmentOut]:
    def download(index: int, a: Attachment) -> str | None:
        if a.file_id is None or message.raw_id is None:
            return None
        return f"/cases/{message.case_number}/messages/{message.raw_id}/attachments/{index}"

    return [
        AttachmentOut(
            filename=a.filename,
            content_type=a.content_type,
            size=a.size,
            omitted=a.omitted,
            download=download(i, a),
        )
        for i, a in enumerate(message.attachments)
    ]


def _mail(message: CaseMessage, entry: OutboxEntry | None) -> ThreadMail:
    return ThreadMail(
        direction=message.direction,
        at=message.created_at,
        kind=message.classification if message.direction == "in" else _kind(entry),
        message_id=message.message_id,
        raw_id=message.raw_id,
        outbox_id=message.outbox_id,
        subject=message.subject,
        from_=message.from_,
        to=message.to,
        cc=message.cc,
        date=message.date,
        text=message.text,
        html=message.html,
        attachments=_attachments(message),
        rule=message.rule,
        reason=message.reason,
        notes=message.notes,
        status=entry.status if entry else None,
        delivery=delivery_of(entry, message) if entry else [],
        bounce=message.bounce,
        complaint=message.complaint,
    )


def _kind(entry: OutboxEntry | None) -> Literal["acknowledgement", "reply", "notification"] | None:
    if entry is None or entry.kind not in ("acknowledgement", "reply", "notification"):
        return None
    kind: Literal["acknowledgement", "reply", "notification"] = entry.kind  # type: ignore[assignment]
    return kind


def _unbuilt(entry: OutboxEntry) -> ThreadMail:
    """An outgoing mail of the case that was never built (queued, stopped, refused before
    sending): only its outbox entry tells of it."""
    return ThreadMail(
        direction="out",
        at=entry.created_at,
        kind=_kind(entry),
        message_id=entry.message_id,
        raw_id=None,
        outbox_id=entry.id,
        subject=entry.subject,
        from_=[],
        to=[ReceivedAddress.model_validate(a) for a in entry.to],
        cc=[ReceivedAddress.model_validate(a) for a in entry.cc],
        date=None,
        text=None,
        html=None,
        attachments=[],
        rule=None,
        reason=entry.error,
        notes=[],
        status=entry.status,
        delivery=delivery_of(entry, None),
        bounce=None,
        complaint=None,
    )


async def case_thread(rt: Runtime, *, number: int) -> CaseThread:
    """A case's thread; NotFound when there is no such case."""
    case = await rt.store.cases.get(number=number)
    if case is None:
        raise NotFound(f"no case {number}")
    messages = await rt.store.cases.messages(case_number=number)
    query = OutboxQuery(case_number=number)
    entries, _ = await rt.store.outbox.page(query=query, limit=THREAD_LIMIT)
    by_id = {e.id: e for e in entries}
    mails = [_mail(m, by_id.pop(m.outbox_id, None) if m.outbox_id else None) for m in messages]
    mails += [_unbuilt(e) for e in by_id.values()]
    mails.sort(key=lambda m: m.at)
    return CaseThread(case=case, mails=mails[-THREAD_LIMIT:])
