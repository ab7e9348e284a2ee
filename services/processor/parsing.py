"""Raw RFC 5322 bytes → ParsedMail. Parsing never raises anything but Permanent.

The stdlib parser with ``policy.default`` repairs most damage itself and lists what it
repaired in ``defects``; where a header or part still cannot be decoded we keep what we can
and record the defect instead of failing the whole mail.
"""

from __future__ import annotations

import email.utils
import re
from datetime import datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from shared.errors import Permanent
from shared.models.messages import MailAddress
from shared.models.records import Attachment

MESSAGE_ID = re.compile(r"<[^<>\s]+>")
AUTO_SUBMITTED_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress", "X-Loop")


class BounceInfo(BaseModel):
    """What a delivery status notification says about the mail it reports on."""

    recipient: str | None = None
    status: str | None = None
    action: str | None = None
    original_message_id: str | None = None
    diagnostic: str | None = None


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


def parse(data: bytes) -> ParsedMail:
    """Parse a raw mail; Permanent when it is not a mail at all."""
    if not data.strip():
        raise Permanent("unparseable mail: it is empty")
    try:
        msg = BytesParser(policy=policy.default).parsebytes(data)
    except Exception as exc:  # the parser is meant not to raise; a bug there must not crash us
        raise Permanent(f"unparseable mail: {type(exc).__name__}: {exc}") from exc
    if not isinstance(msg, EmailMessage) or not msg.keys():
        raise Permanent("unparseable mail: no header block")
    defects: list[str] = [type(d).__name__ for d in msg.defects]
    text, html = _bodies(msg, defects)
    return ParsedMail.model_validate(
        {
            "message_id": _first_id(_header(msg, "Message-ID", defects)),
            "in_reply_to": _first_id(_header(msg, "In-Reply-To", defects)),
            "references": MESSAGE_ID.findall(_header(msg, "References", defects)),
            "subject": " ".join(_header(msg, "Subject", defects).split()),
            "date": _date(msg, defects),
            "from": _addresses(msg, "From", defects),
            "to": _addresses(msg, "To", defects),
            "cc": _addresses(msg, "Cc", defects),
            "reply_to": _addresses(msg, "Reply-To", defects),
            "text": text,
            "html": html,
            "attachments": _attachments(msg, defects),
            "classification": "auto_reply" if is_auto_reply(msg) else "normal",
            "size": len(data),
            "defects": defects,
        }
    )


def is_auto_reply(msg: Message) -> bool:
    """RFC 3834 Auto-Submitted, Precedence bulk/junk/list and the common vendor headers."""
    auto = str(msg.get("Auto-Submitted", "no")).strip().lower()
    if auto and auto != "no":
        return True
    if str(msg.get("Precedence", "")).strip().lower() in {"bulk", "junk", "list", "auto_reply"}:
        return True
    return any(msg.get(name) is not None for name in AUTO_SUBMITTED_HEADERS)


def _header(msg: EmailMessage, name: str, defects: list[str]) -> str:
    try:
        value = msg.get(name)
    except Exception as exc:  # a header the policy cannot decode
        defects.append(f"{name}: {type(exc).__name__}")
        raw = msg.get_all(name, failobj=[])
        return str(raw[0]) if raw else ""
    return "" if value is None else str(value)


def _first_id(value: str) -> str | None:
    found = MESSAGE_ID.search(value)
    return found.group(0) if found else None


def _date(msg: EmailMessage, defects: list[str]) -> datetime | None:
    value = _header(msg, "Date", defects)
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        defects.append(f"Date: unparseable {value[:60]!r}")
        return None


def _addresses(msg: EmailMessage, name: str, defects: list[str]) -> list[MailAddress]:
    values = [_header(msg, name, defects)] if msg.get_all(name) else []
    result: list[MailAddress] = []
    for display, addr in email.utils.getaddresses(values):
        if not addr:
            continue
        try:
            result.append(MailAddress(name=" ".join(display.split()), address=addr))
        except ValidationError:
            defects.append(f"{name}: invalid address {addr[:80]!r}")
    return result


def _bodies(msg: EmailMessage, defects: list[str]) -> tuple[str | None, str | None]:
    bodies: dict[str, str | None] = {"plain": None, "html": None}
    for subtype in bodies:
        part = msg.get_body(preferencelist=(subtype,))
        if part is None:
            continue
        try:
            bodies[subtype] = str(part.get_content())
        except (LookupError, UnicodeDecodeError) as exc:
            payload = part.get_payload(decode=True)
            raw = payload if isinstance(payload, bytes) else b""
            defects.append(f"body {subtype}: {type(exc).__name__}, decoded as UTF-8 with repair")
            bodies[subtype] = raw.decode("utf-8", errors="replace")
    return bodies["plain"], bodies["html"]


def _attachments(msg: EmailMessage, defects: list[str]) -> list[Attachment]:
    result: list[Attachment] = []
    for part in msg.iter_attachments():
        payload = part.get_payload(decode=True)
        try:
            filename = part.get_filename()
        except Exception as exc:  # undecodable RFC 2231 parameters
            defects.append(f"attachment filename: {type(exc).__name__}")
            filename = None
        cid = part.get("Content-ID")
        result.append(
            Attachment(
                filename=filename,
                content_type=part.get_content_type(),
                size=len(payload) if isinstance(payload, bytes) else 0,
                content_id=str(cid).strip() if cid else None,
            )
        )
    return result
