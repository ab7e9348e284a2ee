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
    subject: HeaderText
    text: str
    in_reply_to: HeaderText | None = None
    references: list[HeaderText] = Field(default_factory=list)
    from_address: MailAddress | None = None
    """A From other than the configured one (e.g. a queue's address); must be allowed."""
    template: Literal["acknowledgement", "assignee_changed", "fetch_error"] | None = None
    """Build subject and text from this technical template instead (acknowledgements always
    use theirs); ``variables`` fill it in."""
    variables: dict[str, str] = Field(default_factory=dict)


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
