"""Building the RFC 5322 message of an outgoing mail: a pure function of the mail and config.

Everything in the message derives from the ``OutgoingMail`` and the configuration, never
from the clock or chance: a redelivered mail is rebuilt with the same Message-ID and Date,
so a receiver that got the first copy can recognise the second.
"""

from __future__ import annotations

import functools
import hashlib
import re
from email import policy
from email.headerregistry import Address, BaseHeader, HeaderRegistry, UnstructuredHeader
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


def _header_registry() -> HeaderRegistry:
    registry = HeaderRegistry()
    registry.map_to_type("in-reply-to", _MessageIdListHeader)
    registry.map_to_type("references", _MessageIdListHeader)
    return registry


MAIL_POLICY = policy.SMTP.clone(header_factory=_header_registry())
"""CRLF line ends, and msg-id lists that survive folding."""


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
) -> EmailMessage:
    """The message to send for ``mail``: headers for threading and loop prevention, UTF-8 text.

    ``message_id`` overrides the derived Message-ID (the one stored at the first attempt);
    ``content`` is what :func:`content_of` made of it (built here without a conversation
    id when not given). Raises ValueError when the mail cannot be built (see ``content``).
    """
    addresses = config.addresses
    content = content or content_of(mail, config)
    msg = EmailMessage(policy=MAIL_POLICY)
    msg["From"] = _addresses("From", content.from_address)
    if addresses.reply_to is not None:
        msg["Reply-To"] = _addresses("Reply-To", addresses.reply_to)
    msg["To"] = _addresses("To", *mail.to)
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
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-Auto-Response-Suppress"] = "All"
    # Quoted-printable stays readable and is 7-bit clean, whatever the server supports.
    msg.set_content(content.text, charset="utf-8", cte="quoted-printable")
    return msg
