"""Building the RFC 5322 message of an outgoing mail: a pure function of the mail and config.

Everything in the message derives from the ``OutgoingMail`` and the configuration, never
from the clock or chance: a redelivered mail is rebuilt with the same Message-ID and Date,
so a receiver that got the first copy can recognise the second.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import io
import re
from collections.abc import Sequence
from email import policy, quoprimime, utils
from email._header_value_parser import TokenList
from email.generator import BytesGenerator
from email.headerregistry import (
    Address,
    BaseHeader,
    DateHeader,
    HeaderRegistry,
    MessageIDHeader,
    UnstructuredHeader,
)
from email.message import EmailMessage
from email.policy import Policy

from services.sender.content import Content, content_of
from shared.models.config import SystemConfig
from shared.models.messages import MailAddress, OutgoingMail

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")


class _MessageIdListHeader(UnstructuredHeader, BaseHeader):
    """In-Reply-To / References: a list of msg-ids, folded only between ids.

    The stdlib treats these headers as unstructured text and RFC 2047-encodes an id longer
    than a line, which no mail client can match any more: threading silently breaks.
    """

    def fold(self, *, policy: Policy) -> str:
        """The header folded at whitespace between ids, never encoded."""
        ids = str(self).split()
        width = policy.max_line_length or 998
        lines = [f"{self.name}: {ids[0]}" if ids else f"{self.name}:"]
        for ident in ids[1:]:
            if len(lines[-1]) + 1 + len(ident) > width:
                lines.append("")
            lines[-1] += f" {ident}"
        return policy.linesep.join(lines) + policy.linesep


class _FoldedOnce(BaseHeader):
    """Base of every header class here: a header object is immutable, so one that is reused
    (From, Reply-To, the MIME headers) is folded once, not once per mail."""

    def fold(self, *, policy: Policy) -> str:
        """The folded header, remembered for the policy it was folded for."""
        memo: tuple[Policy, str] | None = self.__dict__.get("_folded")
        if memo is None or memo[0] is not policy:
            memo = (policy, super().fold(policy=policy))
            self.__dict__["_folded"] = memo
        return memo[1]


_PLAIN = re.compile(r"[!-~]+(?: [!-~]+)*")
"""Printable ASCII words separated by single spaces: text that no header parser changes."""
_PLAIN_MSG_ID = re.compile(rf"<{_ATEXT}(?:\.{_ATEXT})*@{_ATEXT}(?:\.{_ATEXT})*>")


class _Plain:
    """Subject, Date and Message-ID skip the parse (a third of a mail's cost) when the value is
    plain: such a value parses to itself, without defects, and a header that fits on one line
    folds to ``Name: value``. Anything else, or a line too long, is parsed as the stdlib does.

    A mixin placed before the stdlib class, as the registry combines them with a base class.
    """

    name: str
    _parse_tree: TokenList | None

    @classmethod
    def _plain(cls, value: str) -> bool:
        # "=?" may start an encoded word, which the parser would decode.
        return _PLAIN.fullmatch(value) is not None and "=?" not in value

    @classmethod
    def parse(cls, value: object, kwds: dict[str, object]) -> None:
        """The stdlib parse, or for a plain value no parse tree until one is needed."""
        if isinstance(value, str) and cls._plain(value):
            kwds["decoded"] = value
            kwds["parse_tree"] = None
        else:
            super().parse(value, kwds)  # type: ignore[misc]

    def fold(self, *, policy: Policy) -> str:
        """``Name: value`` when that fits on a line, else the stdlib folding."""
        if self._parse_tree is None:
            line = f"{self.name}: {self}"
            if len(line) <= (policy.max_line_length or len(line)):
                return line + policy.linesep
            self._parse_tree = self.value_parser(str(self))  # type: ignore[attr-defined]
        folded: str = super().fold(policy=policy)  # type: ignore[misc]
        return folded


class _PlainSubject(_Plain, UnstructuredHeader, BaseHeader):
    """Subject: see :class:`_Plain`."""


# The stubs type MessageIDHeader.max_count and DateHeader.init unlike BaseHeader's; at run time
# these are the stdlib's own combinations, as the registry makes them.
class _PlainMessageId(_Plain, MessageIDHeader, BaseHeader):  # type: ignore[misc]
    """Message-ID: see :class:`_Plain`; only ``<dot-atom@dot-atom>`` counts as plain."""

    @classmethod
    def _plain(cls, value: str) -> bool:
        return _PLAIN_MSG_ID.fullmatch(value) is not None


class _PlainDate(_Plain, DateHeader, BaseHeader):  # type: ignore[misc]
    """Date: a datetime is formatted (always plain) and not parsed back; see :class:`_Plain`."""

    @classmethod
    def parse(cls, value: object, kwds: dict[str, object]) -> None:
        """The stdlib parse of a string; a datetime is only formatted."""
        if isinstance(value, datetime.datetime):
            kwds["datetime"] = value
            kwds["decoded"] = utils.format_datetime(value)
            kwds["parse_tree"] = None
        else:
            # Past _Plain: a date string must be parsed, plain or not, for its datetime.
            super(_Plain, cls).parse(value, kwds)  # type: ignore[arg-type]


class _Registry(HeaderRegistry):
    """The stdlib registry creates a new class on every lookup (a tenth of a mail's cost);
    this one creates each header class once."""

    def __init__(self) -> None:
        super().__init__(base_class=_FoldedOnce)
        self._classes: dict[str, type[BaseHeader]] = {}
        self.map_to_type("in-reply-to", _MessageIdListHeader)
        self.map_to_type("references", _MessageIdListHeader)
        self.map_to_type("subject", _PlainSubject)
        self.map_to_type("message-id", _PlainMessageId)
        self.map_to_type("date", _PlainDate)

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        cls = self._classes.get(key)
        if cls is None:
            cls = self._classes[key] = super().__getitem__(name)
        return cls


MAIL_POLICY = policy.SMTP.clone(header_factory=_Registry())
"""CRLF line ends, and msg-id lists that survive folding."""
_UTF8_POLICY = MAIL_POLICY.clone(utf8=True)
_LINE_LENGTH = MAIL_POLICY.max_line_length or 78


@functools.cache
def _constant(name: str, value: str) -> BaseHeader:
    header: BaseHeader = MAIL_POLICY.header_factory(name, value)
    return header


def derive_message_id(mail_id: str, from_address: str) -> str:
    """``<mail_id@domain-of-From>``: derived from the idempotency key, so resends keep it.

    A ``mail_id`` that is not a valid left part of a msg-id (a dot-atom) is replaced by its
    SHA-256, which is just as deterministic and cannot smuggle anything into the header.
    """
    left = mail_id if _DOT_ATOM.fullmatch(mail_id) else hashlib.sha256(mail_id.encode()).hexdigest()
    domain = from_address.rpartition("@")[2].encode("idna").decode("ascii")
    return f"<{left}@{domain}>"


@functools.lru_cache(maxsize=1024)
def _address_header(name: str, mailboxes: tuple[tuple[str, str], ...]) -> BaseHeader:
    # Parsing an address header costs more than the rest of a mail; the From, the Reply-To
    # and frequent recipients repeat, and header objects are immutable, so they are reused.
    addresses = [Address(display_name=n, addr_spec=a) for n, a in mailboxes]
    header: BaseHeader = MAIL_POLICY.header_factory(name, addresses)
    return header


def _addresses(name: str, *mailboxes: MailAddress) -> BaseHeader:
    return _address_header(name, tuple((m.name, str(m.address)) for m in mailboxes))


def compose(
    mail: OutgoingMail,
    config: SystemConfig,
    *,
    message_id: str | None = None,
    content: Content | None = None,
    files: Sequence[bytes] = (),
) -> EmailMessage:
    """The message to send for ``mail``: headers for threading and loop prevention, UTF-8 text.

    ``message_id`` overrides the derived Message-ID (the one stored at the first attempt);
    ``content`` is what :func:`content_of` made of it (built here without a conversation
    id when not given); ``files`` are the bytes of ``mail.attachments``, in order. Raises
    ValueError when the mail cannot be built (see ``content``).
    """
    addresses = config.addresses
    content = content or content_of(mail, config)
    msg = EmailMessage(policy=MAIL_POLICY)
    msg["From"] = _addresses("From", content.from_address)
    if addresses.reply_to is not None:
        msg["Reply-To"] = _addresses("Reply-To", addresses.reply_to)
    msg["To"] = _addresses("To", *mail.to)
    if mail.cc:
        msg["Cc"] = _addresses("Cc", *mail.cc)
    msg["Subject"] = content.subject
    msg["Date"] = mail.sent_at  # formatted by the header class, without a parse
    msg["Message-ID"] = message_id or derive_message_id(
        mail.mail_id, str(content.from_address.address)
    )
    # A parent without References still threads: its own id is the whole chain.
    references = mail.references or ([mail.in_reply_to] if mail.in_reply_to else [])
    if mail.in_reply_to:
        msg["In-Reply-To"] = mail.in_reply_to
    if references:
        msg["References"] = " ".join(references)
    if mail.automatic:
        # RFC 3834: automatic mail must not be answered automatically (no mail loops);
        # Exchange ignores that header and needs its own to suppress out-of-office replies.
        msg["Auto-Submitted"] = _constant("Auto-Submitted", "auto-generated")
        msg["X-Auto-Response-Suppress"] = _constant("X-Auto-Response-Suppress", "All")
    if mail.html is None and not mail.attachments:
        _set_text(msg, content.text)
    else:
        _set_parts(msg, content.text, mail, files)
    return msg


def _set_parts(msg: EmailMessage, text: str, mail: OutgoingMail, files: Sequence[bytes]) -> None:
    """A multipart body: the text, its HTML alternative if any, then the attachments.

    The rare case (an agent's answer) goes through the stdlib's MIME builder; the common
    text-only mail keeps the fast path of :func:`_set_text`.
    """
    if len(files) != len(mail.attachments):
        raise ValueError(f"{len(mail.attachments)} attachments named, {len(files)} given")
    msg.set_content(text, charset="utf-8", cte="quoted-printable")
    if mail.html is not None:
        msg.add_alternative(mail.html, subtype="html", charset="utf-8", cte="quoted-printable")
    for attachment, data in zip(mail.attachments, files, strict=True):
        maintype, _, subtype = attachment.content_type.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=attachment.filename)


def _set_text(msg: EmailMessage, text: str) -> None:
    """What ``msg.set_content(text, charset="utf-8", cte="quoted-printable")`` does, with
    header objects made once instead of parsed for every mail.

    Quoted-printable stays readable and is 7-bit clean, whatever the server supports.
    """
    msg["Content-Type"] = _constant("Content-Type", 'text/plain; charset="utf-8"')
    msg["Content-Transfer-Encoding"] = _constant("Content-Transfer-Encoding", "quoted-printable")
    msg["MIME-Version"] = _constant("MIME-Version", "1.0")
    body = b"\n".join(text.encode("utf-8").splitlines()) + b"\n"
    msg.set_payload(quoprimime.body_encode(body.decode("latin-1"), _LINE_LENGTH))


def wire_bytes(message: EmailMessage, *, utf8: bool = False) -> bytes:
    """The message as sent: CRLF line ends; ``utf8`` keeps non-ASCII headers unencoded
    (only for a server that announced SMTPUTF8)."""
    out = io.BytesIO()
    BytesGenerator(out, policy=_UTF8_POLICY if utf8 else MAIL_POLICY).flatten(message)
    return out.getvalue()


def envelope_sender(message: EmailMessage) -> str:
    """The address of the message's From (the SMTP MAIL FROM)."""
    return str(message["From"].addresses[0].addr_spec)


def envelope_recipients(message: EmailMessage) -> list[str]:
    """Every address in To and Cc (the SMTP RCPT TO when no list is given)."""
    return [
        str(address.addr_spec)
        for name in ("To", "Cc")
        for header in message.get_all(name, [])
        for address in header.addresses
    ]
