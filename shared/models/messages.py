"""Every message body that crosses RabbitMQ. Each carries a ``schema_version``.

``mail.received`` carries a reference to the stored raw mail, never the bytes.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field

_HEADER_UNSAFE = re.compile(r"[\r\n\x00]")


def _no_header_injection(value: str) -> str:
    if _HEADER_UNSAFE.search(value):
        raise ValueError("must not contain CR, LF or NUL (header injection)")
    return value


HeaderText = Annotated[str, AfterValidator(_no_header_injection)]
"""A string that will end up in a mail header: CR/LF are refused at the boundary."""


def new_id() -> str:
    """A fresh identifier for documents and messages."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class Message(BaseModel):
    """Base of every broker message."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: int = 1
    correlation_id: str = Field(default_factory=new_id)
    sent_at: datetime = Field(default_factory=utcnow)


class MailAddress(BaseModel):
    """A mailbox with an optional display name."""

    model_config = ConfigDict(frozen=True)

    name: HeaderText = ""
    address: EmailStr


class MailReceived(Message):
    """``mail.received``: a raw mail was stored and waits for the processor."""

    schema_version: Literal[1] = 1
    raw_id: str
    account: str
    source_key: str


class MailAttachment(BaseModel):
    """An attachment of an outgoing mail: its bytes are in the ``attachments`` GridFS bucket
    under ``file_id`` (their SHA-256), never in the message itself."""

    model_config = ConfigDict(frozen=True)

    filename: HeaderText = Field(min_length=1, max_length=255)
    content_type: str = Field(default="application/octet-stream", pattern=r"^[\w.+-]+/[\w.+-]+$")
    size: int = Field(ge=0)
    file_id: str = Field(pattern=r"^[0-9a-f]{64}$")


class OutgoingMail(Message):
    """``mail.outgoing``: a mail the sender must build and deliver.

    ``mail_id`` is the idempotency key: the same id is sent at most once.
    """

    schema_version: Literal[1] = 1
    mail_id: str = Field(default_factory=new_id)
    kind: Literal["acknowledgement", "reply", "notification"]
    automatic: bool
    case_number: int | None = None
    to: list[MailAddress] = Field(min_length=1)
    cc: list[MailAddress] = Field(default_factory=list)
    subject: HeaderText
    text: str
    html: str | None = None
    """An HTML alternative of ``text`` (an agent's answer); the mail is then multipart."""
    attachments: list[MailAttachment] = Field(default_factory=list)
    in_reply_to: HeaderText | None = None
    references: list[HeaderText] = Field(default_factory=list)
    from_address: MailAddress | None = None
    """A From other than the configured one (e.g. a queue's address); must be allowed."""
    account: str | None = None
    """The incoming account whose outgoing server and From settings the mail uses; None:
    the account the case's mail came in on (see ``services.sender.route``)."""
    template: Literal["acknowledgement", "assignee_changed", "fetch_error"] | None = None
    """Build subject and text from this technical template instead (acknowledgements always
    use theirs); ``variables`` fill it in."""
    variables: dict[str, str] = Field(default_factory=dict)

    @property
    def recipients(self) -> list[MailAddress]:
        """Everyone the mail goes to: To, then Cc (the SMTP envelope)."""
        return [*self.to, *self.cc]


class CaseEvent(Message):
    """``case.created`` / ``case.updated``: for integrators of the surrounding case system."""

    schema_version: Literal[1] = 1
    event: Literal["created", "updated"]
    case_number: int
    raw_id: str
    message_id: str | None
    rule: str
    reason: str


class AccountFailing(Message):
    """``account.failing``: an incoming account exhausted its retries."""

    schema_version: Literal[1] = 1
    account: str
    error: str
    failures: int


class ConfigChanged(Message):
    """Broadcast on ``config`` after every accepted change; ``version`` is the global one."""

    schema_version: Literal[1] = 1
    version: int
    module: str
    key: str
    action: Literal["set", "delete"]
