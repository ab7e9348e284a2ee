"""Raw RFC 5322 bytes → ParsedMail. Parsing never raises anything but Permanent.

The stdlib parser repairs most damage itself and lists it in ``defects``; everything that
decodes (charsets, encoded words, TNEF, S/MIME, reports) turns its failures into defects as
well. Only input that is not a mail at all, or a bug no guard caught, becomes Permanent, so
the consumer never crashes on a mail and the operator sees why it failed.
"""

from __future__ import annotations

from email.message import Message
from email.parser import BytesParser

from inscriptis import get_text

from services.processor.parsing import _headers as headers
from services.processor.parsing._bounce import bounce_info
from services.processor.parsing._classify import auto_reply_marker
from services.processor.parsing._complaint import complaint_info
from services.processor.parsing._digest import content_digest
from services.processor.parsing._headers import RAW_POLICY
from services.processor.parsing._model import (
    BounceInfo,
    Classification,
    Complaint,
    ContactSource,
    ParsedMail,
)
from services.processor.parsing._parts import collect
from services.processor.parsing._recover import recover_head
from services.processor.parsing._ses import ses_notification
from shared.errors import Permanent
from shared.models.records import ReceivedAddress

# A mail has at least one of these; a header block with none of them is not a mail.
_MAIL_HEADERS = (
    "From", "To", "Subject", "Date", "Message-ID", "Received", "MIME-Version", "Content-Type",
    "Return-Path", "Sender", "Cc", "Delivered-To",
)  # fmt: skip
# Converting more HTML than this to text costs time and shows no reader anything more.
MAX_HTML_FOR_TEXT = 2 * 1024 * 1024
MAX_DEFECTS = 100


def parse(
    data: bytes, *, contents: list[bytes] | None = None, size: int | None = None
) -> ParsedMail:
    """Parse a raw mail; Permanent when it is not a mail at all.

    When ``contents`` is given, the bytes of each attachment are appended to it in the order
    of ``ParsedMail.attachments`` (only then are they kept: a dry run needs no copy of them).
    ``size``: the stored mail's size when ``data`` is a slimmed copy of it (the processor's
    ``slim``), else ``len(data)``.
    """
    if not data.strip():
        raise Permanent("unparseable mail: it is empty")
    try:
        parsed = _parse(data, contents)
    except Permanent:
        raise
    except Exception as exc:  # a bug no guard caught must not crash the consumer
        raise Permanent(f"unparseable mail: {type(exc).__name__}: {exc}"[:500]) from exc
    return parsed if size is None else parsed.model_copy(update={"size": size})


def _parse(data: bytes, contents: list[bytes] | None) -> ParsedMail:
    defects: list[str] = []
    # Exports from some tools start with blank lines or a UTF-8 byte-order mark: the header
    # block would read as empty and the whole mail as body.
    start = data.lstrip(b"\r\n").removeprefix(b"\xef\xbb\xbf")
    if len(start) != len(data):
        defects.append("blank lines or byte-order mark before the headers removed")
    msg = _message(recover_head(start, defects), defects)
    if not any(msg.get(name) is not None for name in _MAIL_HEADERS):
        raise Permanent("unparseable mail: no header block")
    defects[:0] = [type(d).__name__ for d in msg.defects]
    body = collect(msg, defects, contents=contents)
    subject = headers.text(msg, "Subject", defects)
    sender = headers.raw(msg, "From", defects)
    ses = ses_notification(body.text[0]) if len(body.text) == 1 else None
    complaint = ses if isinstance(ses, Complaint) else complaint_info(msg, body)
    bounce = ses if isinstance(ses, BounceInfo) else None
    if complaint is None and bounce is None:
        bounce = bounce_info(msg, body, sender, subject)
    marker = None if complaint or bounce else auto_reply_marker(msg)
    classification: Classification = (
        "complaint" if complaint
        else "bounce" if bounce
        else "auto_reply" if marker
        else "normal"
    )  # fmt: skip
    text, html = _join(body.text), _join(body.html)
    if text is None and html is not None:
        text = _html_text(html, defects)
    addresses = {
        name: headers.addresses(msg, name, defects)
        for name in ("From", "To", "Cc", "Reply-To", "Sender", "Return-Path")
    }
    return ParsedMail(
        message_id=headers.first_id(msg, "Message-ID", defects),
        in_reply_to=headers.first_id(msg, "In-Reply-To", defects),
        references=headers.ids(msg, "References", defects),
        subject=subject,
        date=headers.date(msg, defects),
        from_=addresses["From"],
        to=addresses["To"],
        cc=addresses["Cc"],
        reply_to=addresses["Reply-To"],
        sender=addresses["Sender"],
        return_path=addresses["Return-Path"],
        contact_source=_contact_source(addresses, defects),
        headers=headers.fields(msg, defects),
        text=text,
        html=html,
        attachments=body.attachments,
        classification=classification,
        bounce=bounce,
        complaint=complaint,
        auto_reply_marker=marker,
        content_digest=content_digest(start),
        size=len(data),
        defects=_bounded(defects),
    )


def _contact_source(
    addresses: dict[str, list[ReceivedAddress]], defects: list[str]
) -> ContactSource | None:
    """Which header names the writer: From, else Reply-To, Sender, Return-Path."""
    sources: tuple[tuple[str, ContactSource], ...] = (
        ("From", "from"), ("Reply-To", "reply_to"), ("Sender", "sender"),
        ("Return-Path", "return_path"),
    )  # fmt: skip
    for name, source in sources:
        if addresses[name]:
            if source != "from":
                defects.append(f"no From address: the contact is taken from {name}")
            return source
    return None


def _message(data: bytes, defects: list[str]) -> Message:
    try:
        return BytesParser(policy=RAW_POLICY).parsebytes(data)
    except RecursionError:
        # The stdlib parser recurses once per nesting level: show the body as text instead.
        defects.append("MIME parts nested too deep to parse; body shown as text")
        msg = BytesParser(policy=RAW_POLICY).parsebytes(data, headersonly=True)
        del msg["Content-Type"]
        del msg["Content-Transfer-Encoding"]
        return msg


def _bounded(defects: list[str]) -> list[str]:
    # A mail broken in every line would otherwise carry one defect per line into the store.
    unique = list(dict.fromkeys(defects))
    if len(unique) <= MAX_DEFECTS:
        return unique
    return [*unique[:MAX_DEFECTS], f"... and {len(unique) - MAX_DEFECTS} more defects"]


def _join(texts: list[str]) -> str | None:
    return "\n".join(texts) if texts else None


def _html_text(html: str, defects: list[str]) -> str:
    if len(html) > MAX_HTML_FOR_TEXT:
        defects.append(f"HTML body over {MAX_HTML_FOR_TEXT} characters: text taken from its start")
    try:
        return str(get_text(html[:MAX_HTML_FOR_TEXT])).strip()
    except Exception as exc:  # lxml refuses some markup; the HTML body itself is still kept
        defects.append(f"HTML to text: {type(exc).__name__}")
        return ""
