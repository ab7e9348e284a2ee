"""Documents Mailroom keeps in MongoDB, as the services see them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.models.messages import MailAddress, new_id, utcnow

RawStatus = Literal["stored", "announced", "processed", "failed", "replayed"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Property(_Record):
    """One system property."""

    module: str
    key: str
    value: Any
    version: int = 0
    updated_at: datetime = Field(default_factory=utcnow)
    updated_by: str = "system"


class ConfigLogEntry(_Record):
    """Audit of one property change; secrets appear as ``***``."""

    module: str
    key: str
    action: Literal["set", "delete"]
    old: Any = None
    new: Any = None
    version: int
    who: str
    at: datetime = Field(default_factory=utcnow)


class RawEmail(_Record):
    """A fetched mail exactly as the server gave it, with where it came from."""

    id: str = Field(default_factory=new_id, alias="_id")
    account: str
    source_key: str
    folder: str
    uidvalidity: int | None = None
    uid: int | None = None
    size: int
    sha256: str
    message_id: str | None = None
    fetched_at: datetime = Field(default_factory=utcnow)
    status: RawStatus = "stored"
    attempts: int = 0
    error: str | None = None
    first_failed_at: datetime | None = None
    last_failed_at: datetime | None = None
    case_number: int | None = None
    correlation_id: str = Field(default_factory=new_id)


class FetchState(_Record):
    """Where fetching an account's folder stands."""

    account: str
    folder: str
    uidvalidity: int | None = None
    last_uid: int = 0
    updated_at: datetime = Field(default_factory=utcnow)


class Attachment(_Record):
    """An attachment's description (bytes stay with the raw mail for now)."""

    filename: str | None
    content_type: str
    size: int
    content_id: str | None = None


class Case(_Record):
    """A minimal case: what the surrounding case system needs to route mail."""

    number: int
    subject: str
    contact: MailAddress | None = None
    status: Literal["open", "closed"] = "open"
    origin_raw_id: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class CaseMessage(_Record):
    """One mail of a case, in or out, parsed."""

    case_number: int
    direction: Literal["in", "out"]
    message_id: str | None
    raw_id: str | None = None
    outbox_id: str | None = None
    subject: str
    from_: list[MailAddress] = Field(default_factory=list, alias="from")
    to: list[MailAddress] = Field(default_factory=list)
    cc: list[MailAddress] = Field(default_factory=list)
    date: datetime | None = None
    in_reply_to: str | None = None
    references: list[str] = Field(default_factory=list)
    text: str | None = None
    html: str | None = None
    attachments: list[Attachment] = Field(default_factory=list)
    rule: str | None = None
    reason: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


OutboxStatus = Literal["queued", "sent", "failed"]


class OutboxEntry(_Record):
    """An outgoing mail and what became of it."""

    id: str = Field(alias="_id")
    message_id: str
    case_number: int | None
    kind: str
    to: list[MailAddress]
    subject: str
    status: OutboxStatus = "queued"
    attempts: int = 0
    smtp_reply: str | None = None
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    correlation_id: str | None = None


class FailedMail(_Record):
    """An entry of the failed-mail desk: a dead-lettered message and why."""

    id: str = Field(alias="_id")
    queue: str
    routing_key: str
    ref: str
    body: dict[str, Any]
    account: str | None = None
    error: str
    attempts: int = 0
    first_failed_at: datetime = Field(default_factory=utcnow)
    last_failed_at: datetime = Field(default_factory=utcnow)
    status: Literal["failed", "replayed"] = "failed"
    replays: int = 0


class ReplayRecord(_Record):
    """Audit of one replay from the desk."""

    failed_id: str
    who: str
    at: datetime = Field(default_factory=utcnow)
    outcome: Literal["replayed", "skipped"]
    note: str = ""
