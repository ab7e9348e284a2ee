"""What the parser produces: the parsed mail and, for bounces, what the bounce reports."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from services.processor.parsing._addresses import mailbox
from shared.models.messages import MailAddress
from shared.models.records import Attachment, MailKind, ReceivedAddress

ContactSource = Literal["from", "reply_to", "sender", "return_path"]
Classification = MailKind


class BounceInfo(BaseModel):
    """What a delivery status notification says about the mail it reports on."""

    recipient: str | None = None
    status: str | None = None
    action: str | None = None
    original_message_id: str | None = None
    diagnostic: str | None = None
    smtp_reply: str | None = None
    """The remote server's SMTP reply as the bounce quotes it (``550 5.1.1 <x@y>: unknown``)."""
    verp_tokens: list[str] = Field(default_factory=list)
    """The ``token`` of each ``local+token@domain`` address the bounce was sent to (its To and
    delivery headers, the returned mail's Return-Path): with VERP, the outbox id of our mail."""


class Complaint(BaseModel):
    """What an ARF feedback report (RFC 5965) says about the mail it reports."""

    feedback_type: str = "abuse"
    complainant: str | None = None
    """Who complained: the report's Original-Rcpt-To, else the reported mail's To."""
    original_message_id: str | None = None
    original_mail_from: str | None = None
    user_agent: str | None = None
    source_ip: str | None = None
    verp_tokens: list[str] = Field(default_factory=list)
    """As for bounces: the ``token`` of the ``local+token@domain`` addresses involved."""


class ParsedMail(BaseModel):
    """What the scripts see of a mail."""

    message_id: str | None = None
    in_reply_to: str | None = None
    references: list[str] = Field(default_factory=list)
    subject: str = ""
    date: datetime | None = None
    from_: list[ReceivedAddress] = Field(default_factory=list, alias="from")
    to: list[ReceivedAddress] = Field(default_factory=list)
    cc: list[ReceivedAddress] = Field(default_factory=list)
    reply_to: list[ReceivedAddress] = Field(default_factory=list)
    sender: list[ReceivedAddress] = Field(default_factory=list)
    return_path: list[ReceivedAddress] = Field(default_factory=list)
    """The envelope sender the delivering server recorded (empty for ``<>``)."""
    contact_source: ContactSource | None = None
    """Where the contact came from: From, else Reply-To, Sender, Return-Path (first non-empty)."""
    headers: list[tuple[str, str]] = Field(default_factory=list)
    """Every header field as written (unfolded), in order: what the fields above could not
    read stays visible here."""
    text: str | None = None
    html: str | None = None
    attachments: list[Attachment] = Field(default_factory=list)
    classification: Classification = "normal"
    bounce: BounceInfo | None = None
    """Set when ``classification`` is ``bounce``."""
    complaint: Complaint | None = None
    """Set when ``classification`` is ``complaint`` (an RFC 5965 feedback report)."""
    auto_reply_marker: str | None = None
    """Set when ``classification`` is ``auto_reply``: what marks it (``X-Autoreply header``,
    ``subject starts with 'Automatic reply:'``)."""
    content_digest: str = ""
    """SHA-256 of the mail without its trace headers: the same mail fetched twice (two
    accounts, one more Received) has the same digest."""
    size: int = 0
    """Size of the raw mail in bytes."""
    defects: list[str] = Field(default_factory=list)

    model_config = {"populate_by_name": True}

    @property
    def contact(self) -> ReceivedAddress | None:
        """Who wrote the mail: the first address of the header ``contact_source`` names."""
        for candidates in (self.from_, self.reply_to, self.sender, self.return_path):
            if candidates:
                return candidates[0]
        return None

    @property
    def answer_to(self) -> MailAddress | None:
        """Where an answer goes: Reply-To, else the contact's header; None when no mail can be
        sent there (a non-replyable From is not answered at the envelope sender instead)."""
        chosen = [a for a in self.reply_to if a.replyable]
        if not chosen:
            owner = next((c for c in (self.from_, self.sender, self.return_path) if c), [])
            chosen = [a for a in owner if a.replyable]
        return mailbox(chosen[0].name, chosen[0].address) if chosen else None
