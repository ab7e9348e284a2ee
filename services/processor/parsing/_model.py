"""What the parser produces: the parsed mail and, for bounces, what the bounce reports."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from shared.models.messages import MailAddress
from shared.models.records import Attachment


class BounceInfo(BaseModel):
    """What a delivery status notification says about the mail it reports on."""

    recipient: str | None = None
    status: str | None = None
    action: str | None = None
    original_message_id: str | None = None
    diagnostic: str | None = None
    verp_tokens: list[str] = Field(default_factory=list)
    """The ``token`` of each ``local+token@domain`` address the bounce was sent to (its To and
    delivery headers, the returned mail's Return-Path): with VERP, the outbox id of our mail."""


class ParsedMail(BaseModel):
    """What the scripts see of a mail."""

    message_id: str | None = None
    in_reply_to: str | None = None
    references: list[str] = Field(default_factory=list)
    subject: str = ""
    date: datetime | None = None
    from_: list[MailAddress] = Field(default_factory=list, alias="from")
    to: list[MailAddress] = Field(default_factory=list)
    cc: list[MailAddress] = Field(default_factory=list)
    reply_to: list[MailAddress] = Field(default_factory=list)
    text: str | None = None
    html: str | None = None
    attachments: list[Attachment] = Field(default_factory=list)
    classification: Literal["normal", "auto_reply", "bounce"] = "normal"
    bounce: BounceInfo | None = None
    """Set when ``classification`` is ``bounce``."""
    size: int = 0
    """Size of the raw mail in bytes."""
    defects: list[str] = Field(default_factory=list)

    model_config = {"populate_by_name": True}

    @property
    def answer_to(self) -> MailAddress | None:
        """Where an answer goes: Reply-To, else From."""
        for candidates in (self.reply_to, self.from_):
            if candidates:
                return candidates[0]
        return None
