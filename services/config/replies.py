"""An answer on a case from the case system or an agent (``POST /cases/{number}/reply``).

The answer becomes an ``OutgoingMail`` like every automatic one: the sender renders its
subject with the outgoing subject template and the case's conversation id, checks the From
against the allowed addresses, runs the outgoing-mail scripts and records the outbox. Its
attachments are stored in the ``attachments`` GridFS bucket first (once per content) and
travel by reference. It is threaded as an answer to the case's last incoming mail.

Idempotency: with an ``Idempotency-Key`` the mail id derives from the case and the key, and
the key is stored with a digest of the request; a retried call finds it and answers the same
without publishing again (and even a second publication is sent once: the sender sends each
mail id once). The same key with a different request is refused (409).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from html.parser import HTMLParser
from typing import Annotated

from pydantic import BaseModel, Field, field_validator, model_validator

from services.config.errors import Conflict
from services.sender.compose import derive_message_id
from services.sender.route import case_account, routed
from shared.broker import publish
from shared.errors import ConfigRejected, NotFound
from shared.models.messages import HeaderText, MailAddress, MailAttachment, OutgoingMail, new_id
from shared.models.records import CaseMessage, ReplyKey
from shared.runtime import Runtime
from shared.topology import MAIL_OUTGOING

log = logging.getLogger(__name__)

KEY_PATTERN = r"^[\x21-\x7e]{1,200}$"
"""An Idempotency-Key: 1 to 200 printable ASCII characters."""


class ReplyAttachment(BaseModel):
    """A file to attach, its bytes in base64."""

    filename: Annotated[HeaderText, Field(min_length=1, max_length=255)]
    content_type: str = Field(
        default="application/octet-stream", pattern=r"^[\w.+-]+/[\w.+-]+$", max_length=255
    )
    content_base64: str = Field(min_length=0)

    @field_validator("content_base64")
    @classmethod
    def _is_base64(cls, value: str) -> str:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("not valid base64") from None
        return value

    @property
    def data(self) -> bytes:
        """The decoded bytes."""
        return base64.b64decode(self.content_base64)


class ReplyRequest(BaseModel):
    """An answer on a case. ``to`` defaults to the case's contact; ``subject`` to the
    case's (the outgoing subject template adds the case reference); at least one of
    ``text`` and ``html``."""

    to: list[MailAddress] = Field(default_factory=list, max_length=50)
    cc: list[MailAddress] = Field(default_factory=list, max_length=50)
    subject: Annotated[HeaderText, Field(max_length=500)] | None = None
    text: str | None = Field(default=None, max_length=2_000_000)
    html: str | None = Field(default=None, max_length=2_000_000)
    attachments: list[ReplyAttachment] = Field(default_factory=list, max_length=20)
    from_address: MailAddress | None = None
    """A From other than the configured one; must be in ``addresses/allowed_from``."""
    account: str | None = Field(default=None, max_length=64)
    """The incoming account to answer through (its outgoing server and From settings); one
    made available to users. Empty: the account the case's mail came in on."""

    @model_validator(mode="after")
    def _has_body(self) -> ReplyRequest:
        if not (self.text or self.html):
            raise ValueError("text: give the answer as text, html or both")
        return self


class ReplyOut(BaseModel):
    """The answer as queued for the sender (a retried call gets the same)."""

    mail_id: str
    message_id: str
    case_number: int
    to: list[MailAddress]
    cc: list[MailAddress]
    outbox: str
    """The API path of its delivery state (404 for the moment until the sender takes the mail
    and opens its outbox entry)."""


class _Text(HTMLParser):
    """The text of an HTML answer without its tags (the plain part of the mail)."""

    SKIP = frozenset({"script", "style", "head"})
    BREAKS = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "blockquote"})

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Skip invisible elements; break lines where the HTML does."""
        if tag in self.SKIP:
            self._skipping += 1
        elif tag in self.BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        """End a skipped element."""
        if tag in self.SKIP and self._skipping:
            self._skipping -= 1

    def handle_data(self, data: str) -> None:
        """Keep visible text."""
        if not self._skipping:
            self.parts.append(data)


def text_of_html(html: str) -> str:
    """A readable plain text of ``html``."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line) + "\n"


def _digest(reply: ReplyRequest) -> str:
    return hashlib.sha256(reply.model_dump_json().encode()).hexdigest()


def _parent(messages: list[CaseMessage]) -> CaseMessage | None:
    """The mail the answer answers: the last incoming mail of a person, else the last mail."""
    incoming = [m for m in messages if m.direction == "in" and m.message_id]
    people = [m for m in incoming if m.classification in (None, "normal")]
    threaded = people or incoming or [m for m in messages if m.message_id]
    return threaded[-1] if threaded else None


def _chosen(rt: Runtime, reply: ReplyRequest) -> str | None:
    """The account the answer names, refused (naming the field) unless it exists and is
    made available to users."""
    if reply.account is None:
        return None
    account = rt.config.accounts.get(reply.account)
    if account is None:
        raise ConfigRejected(f"account: no incoming account {reply.account!r}")
    if not account.available_to_users:
        raise ConfigRejected(
            f"account: {reply.account!r} is not made available to users "
            "(its available_to_users is off)"
        )
    return reply.account


async def send_reply(
    rt: Runtime, *, number: int, reply: ReplyRequest, key: str | None, who: str
) -> ReplyOut:
    """Queue the answer for the sender; the same answer for a retried ``key``.

    NotFound for an unknown case; ConfigRejected (422) naming the field for an answer that
    cannot be sent; Conflict (409) for a key used with another request.
    """
    case = await rt.store.cases.get(number=number)
    if case is None:
        raise NotFound(f"no case {number}")
    to = reply.to or ([case.contact] if case.contact else [])
    if not to:
        raise ConfigRejected("to: the case has no contact address; name the recipients")
    parent = _parent(await rt.store.cases.messages(case_number=number))
    in_reply_to = parent.message_id if parent else None
    account = await case_account(
        rt.store.cases,
        rt.config,
        case_number=number,
        in_reply_to=in_reply_to,
        chosen=_chosen(rt, reply),
    )
    # The From the sender will use, so that the Message-ID promised here is the one sent.
    addresses = routed(rt.config, account).addresses
    sender = reply.from_address or addresses.from_address
    if not addresses.from_allowed(str(sender.address)):
        raise ConfigRejected(
            f"from_address: {sender.address} is not allowed "
            f"(addresses/allowed_from: {', '.join(addresses.allowed_from)})"
        )
    digest = _digest(reply)
    stored: ReplyKey | None = None
    if key is None:
        mail_id = f"reply-{number}-{new_id()}"
    else:
        hashed = hashlib.sha256(key.encode()).hexdigest()
        mail_id = f"reply-{number}-{hashed[:32]}"
        stored = await rt.store.reply_keys.claim(
            key=ReplyKey(id=f"{number}:{hashed}", mail_id=mail_id, digest=digest)
        )
        if stored.digest != digest:
            raise Conflict("Idempotency-Key: used before for a different request on this case")
    answer = ReplyOut(
        mail_id=mail_id,
        message_id=derive_message_id(mail_id, str(sender.address)),
        case_number=number,
        to=to,
        cc=reply.cc,
        outbox=f"/outbox/{mail_id}",
    )
    if stored is not None and stored.published:
        return answer
    contents = [a.data for a in reply.attachments]
    file_ids = await rt.store.cases.attachments.put_many(contents=contents)
    references = [*parent.references, parent.message_id] if parent and parent.message_id else []
    mail = OutgoingMail(
        mail_id=mail_id,
        kind="reply",
        automatic=False,
        case_number=number,
        to=to,
        cc=reply.cc,
        subject=reply.subject or case.subject or "(no subject)",
        text=reply.text or text_of_html(reply.html or ""),
        html=reply.html,
        attachments=[
            MailAttachment(
                filename=a.filename, content_type=a.content_type, size=len(data), file_id=f
            )
            for a, data, f in zip(reply.attachments, contents, file_ids, strict=True)
        ],
        from_address=reply.from_address,
        account=reply.account,
        in_reply_to=in_reply_to,
        references=references[-20:],
    )
    await publish(rt.broker, mail, routing_key=MAIL_OUTGOING)
    if stored is not None:
        await rt.store.reply_keys.published(key_id=stored.id)
    log.info("answer queued", extra={"case": number, "mail_id": mail_id, "who": who})
    return answer
