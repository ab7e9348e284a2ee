"""Documents Mailroom keeps in MongoDB, as the services see them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.models.cursors import ImapCursor, pop3_cursor
from shared.models.messages import MailAddress, new_id, utcnow

MailKind = Literal["normal", "auto_reply", "bounce", "complaint"]
"""How an incoming mail was classified: a person's mail, an auto-reply, a bounce, a complaint."""
RawStatus = Literal["stored", "announced", "processed", "failed", "replayed"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class ReceivedAddress(BaseModel):
    """A mailbox as a received mail names it: kept even when no mail could be sent to it.

    Received mail carries addresses a web form would refuse (``MAILER-DAEMON``, ``root@localhost``,
    ``user@host.local``, quoted local parts); they are kept as written and marked
    ``replyable=False`` so that no automatic mail goes to them. A :class:`MailAddress` validates
    as one (``from_attributes``), so outgoing mails are recorded with the same type.
    """

    model_config = ConfigDict(frozen=True, from_attributes=True)

    name: str = ""
    address: str
    replyable: bool = True


class Suppression(_Record):
    """An address that gets no automatic mail, and why."""

    address: str
    """Lower-case; also the document's ``_id``."""
    reason: str
    source: str
    """``complaint`` (a feedback report), or the operator who added it."""
    created_at: datetime = Field(default_factory=utcnow)


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
    forced: str | None = None
    """Set when the change was forced past a guard: the refusal it overrode."""


class RawEmail(_Record):
    """A fetched mail exactly as the server gave it, with where it came from."""

    id: str = Field(default_factory=new_id, alias="_id")
    account: str
    source_key: str
    folder: str
    size: int
    sha256: str
    message_id: str | None = None
    truncated: str | None = None
    """Why only a stub was stored (the mail exceeded the maximum size); None for whole mail."""
    fetched_at: datetime = Field(default_factory=utcnow)
    status: RawStatus = "stored"
    attempts: int = 0
    unfinished: int = 0
    """Processing attempts started and not finished: more than 0 on a redelivery means a
    processor stopped (crashed) while it had the mail: the mail is a suspect."""
    solo_runs: int = 0
    """Attempts made with the mail alone in its processor (as a suspect) that did not finish."""
    error: str | None = None
    first_failed_at: datetime | None = None
    last_failed_at: datetime | None = None
    case_number: int | None = None
    correlation_id: str = Field(default_factory=new_id)


class FetchState(_Record):
    """Where fetching an account's folder stands."""

    account: str
    folder: str
    cursor: str | None = None
    """The mailbox adapter's own cursor (opaque here); None: never fetched."""
    fence_token: int | None = None
    """The lease token of the fetcher whose writes this position accepts (see fetch_state)."""
    updated_at: datetime = Field(default_factory=utcnow)

    @model_validator(mode="before")
    @classmethod
    def _legacy_position(cls, data: Any) -> Any:
        """A position written before the mailbox seam (IMAP ``uidvalidity``, ``last_uid``
        and ``renumbered``; POP3 ``uidls``) becomes the adapter's cursor with the same
        meaning, so an upgrade re-fetches nothing; the next cursor write drops the old
        fields (``LEGACY_FETCH_FIELDS``)."""
        if not isinstance(data, dict) or data.get("cursor") is not None:
            return data
        if data.get("uidvalidity") is not None:
            cursor = ImapCursor(
                uidvalidity=int(data["uidvalidity"]),
                mark=int(data.get("last_uid") or 0),
                renumbered=bool(data.get("renumbered", False)),
            )
            data = {**data, "cursor": cursor.dump()}
        elif data.get("uidls"):
            data = {**data, "cursor": pop3_cursor(str(uidl) for uidl in data["uidls"])}
        return data


LEGACY_FETCH_FIELDS = ("uidvalidity", "last_uid", "renumbered", "uidls")
"""Fetch-state fields from before the mailbox seam, read into ``FetchState.cursor``."""


class Attachment(_Record):
    """An attachment's description; its bytes are in GridFS under ``file_id``."""

    filename: str | None
    content_type: str
    size: int
    content_id: str | None = None
    omitted: bool = False
    """True when the mail was over the size limit and this part was not kept."""
    file_id: str | None = None
    """The bytes' file in the ``attachments`` GridFS bucket (their SHA-256); None when omitted."""


class Case(_Record):
    """A minimal case: what the surrounding case system needs to route mail."""

    number: int
    subject: str
    contact: MailAddress | None = None
    status: Literal["open", "closed"] = "open"
    origin_raw_id: str | None = None
    conversation_id: str | None = None
    """The rendered conversation reference (``00000042`` of ``{CMI: 00000042}``), once given."""
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
    from_: list[ReceivedAddress] = Field(default_factory=list, alias="from")
    to: list[ReceivedAddress] = Field(default_factory=list)
    cc: list[ReceivedAddress] = Field(default_factory=list)
    date: datetime | None = None
    in_reply_to: str | None = None
    references: list[str] = Field(default_factory=list)
    text: str | None = None
    html: str | None = None
    attachments: list[Attachment] = Field(default_factory=list)
    rule: str | None = None
    reason: str | None = None
    notes: list[str] = Field(default_factory=list)
    classification: MailKind | None = None
    """What the parser took an incoming mail for (None on mail stored before it was kept)."""
    bounce: dict[str, Any] | None = None
    """On our outgoing mail: the bounce (DSN) reported about it, as the parser read it."""
    complaint: dict[str, Any] | None = None
    """On our outgoing mail: the spam complaint reported about it."""
    created_at: datetime = Field(default_factory=utcnow)


OutboxStatus = Literal["queued", "sent", "failed", "intercepted", "stopped"]
RecipientState = Literal[
    "queued", "sent", "deferred", "failed", "intercepted", "stopped", "unknown"
]
"""``stopped``: an outgoing-mail script removed the recipient or stopped the whole mail.
``unknown``: the SMTP transaction to it may have succeeded but its outcome was never recorded
(the sender stopped in between): not sent again unless an operator replays it."""


class RecipientDelivery(_Record):
    """What became of one recipient of an outgoing mail."""

    address: str
    state: RecipientState = "queued"
    reply: str | None = None
    """The server's last answer for this recipient (or the error that deferred it)."""
    attempts: int = 0
    updated_at: datetime | None = None

    @property
    def pending(self) -> bool:
        """True while the recipient still waits for a (re)try."""
        return self.state in ("queued", "deferred")


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
    recipients: list[RecipientDelivery] = Field(default_factory=list)
    """One state per envelope recipient; 5xx fails only its recipient, 4xx defers it."""
    sending_since: datetime | None = None
    """The claim of an SMTP transaction in progress: set before it, cleared with its outcome."""
    next_attempt_at: datetime | None = None
    """When deferred recipients are tried again (set with each retry, for operators)."""
    cc: list[MailAddress] = Field(default_factory=list)


class ArchivedMail(_Record):
    """An outgoing mail kept in the test archive instead of being sent."""

    id: str = Field(alias="_id")
    """The mail's ``mail_id``: archiving a redelivered mail again changes nothing."""
    message_id: str
    case_number: int | None
    kind: str
    from_: MailAddress = Field(alias="from")
    to: list[MailAddress]
    subject: str
    text: str
    flavour: str
    """The system flavour that intercepted it."""
    raw: str
    """The whole message as it would have been sent."""
    intercepted_at: datetime = Field(default_factory=utcnow)
    correlation_id: str | None = None


class FailedMail(_Record):
    """An entry of the failed-mail desk: a dead-lettered message and why."""

    id: str = Field(alias="_id")
    queue: str
    routing_key: str
    ref: str
    body: dict[str, Any]
    account: str | None = None
    sender: str | None = None
    subject: str | None = None
    error: str
    attempts: int = 0
    first_failed_at: datetime = Field(default_factory=utcnow)
    last_failed_at: datetime = Field(default_factory=utcnow)
    status: Literal["failed", "replayed", "deleted"] = "failed"
    replays: int = 0


class ReplayRecord(_Record):
    """Audit of one operator action on a desk entry (replay or delete)."""

    failed_id: str
    who: str
    at: datetime = Field(default_factory=utcnow)
    action: Literal["replay", "delete"] = "replay"
    outcome: Literal["replayed", "skipped", "deleted"]
    note: str = ""


class ReplyKey(_Record):
    """A used idempotency key: the mail it became and a digest of the request it came with."""

    id: str = Field(alias="_id")
    mail_id: str
    digest: str
    published: bool = False
    created_at: datetime = Field(default_factory=utcnow)
