"""The MIME tree → body text, HTML body and attachments, within fixed bounds.

Walks the tree itself rather than using ``get_body``/``iter_attachments`` because the mail
needs more than they give: TNEF and S/MIME content, uuencoded files in text, Apple Mail's body
split around inline images, the parts a bounce reports on, and caps on depth and part count so
that a hostile mail costs bounded time.
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser

from services.processor.parsing._decode import decode_bytes, header_text, unescape_8bit
from services.processor.parsing._extract import Extracted, signed_content, untnef, uudecode
from services.processor.parsing._headers import RAW_POLICY, charset_hint
from shared.models.records import Attachment

MAX_DEPTH = 20
MAX_PARTS = 1000
_TNEF_TYPES = {"application/ms-tnef", "application/vnd.ms-tnef"}
_TOKEN_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]{1,127}/[a-z0-9!#$&^_.+-]{1,127}")
_REPORT_TYPES = {
    "message/delivery-status",
    "message/disposition-notification",
    "message/feedback-report",
}
_PKCS7_TYPES = {"application/pkcs7-mime", "application/x-pkcs7-mime"}


@dataclass
class Body:
    """What the walk collected."""

    defects: list[str]
    text: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    contents: list[bytes] | None = None
    """Each attachment's bytes, in the order of ``attachments``, when the caller wants them."""
    reports: list[Message] = field(default_factory=list)
    """message/delivery-status parts, for the bounce parser."""
    feedback: list[Message] = field(default_factory=list)
    """message/feedback-report parts (RFC 5965), for the complaint parser."""
    originals: list[Message] = field(default_factory=list)
    """Headers of mails a bounce returns (message/rfc822, text/rfc822-headers)."""
    charset: str | None = None
    """The mail's charset (``charset_hint``): raw 8-bit file names are read in it."""
    parts: int = 0
    unlisted: int = 0
    """Attachments beyond MAX_PARTS (uuencode and TNEF can hold any number)."""


def collect(msg: Message, defects: list[str], *, contents: list[bytes] | None = None) -> Body:
    """Walk the whole mail; the attachments' bytes go to ``contents`` when it is given."""
    body = Body(defects, contents=contents, charset=charset_hint(msg))
    _walk(msg, 0, body, alternative=False)
    if body.unlisted:
        defects.append(f"{body.unlisted} more attachments not listed (limit {MAX_PARTS})")
    return body


def _walk(part: Message, depth: int, body: Body, *, alternative: bool) -> None:
    body.parts += 1
    if body.parts == MAX_PARTS + 1:
        body.defects.append(f"more than {MAX_PARTS} MIME parts; the rest is not listed")
    if body.parts > MAX_PARTS:
        return
    if depth > MAX_DEPTH:
        body.defects.append(f"MIME parts nested deeper than {MAX_DEPTH}; inner parts skipped")
        return
    body.defects.extend(f"part {depth}: {type(d).__name__}" for d in part.defects if depth)
    ctype = part.get_content_type()
    if not _TOKEN_TYPE.fullmatch(ctype):
        # RFC 2045 §5.2: a Content-Type that does not parse means text/plain.
        body.defects.append(f"part {depth}: invalid Content-Type {ctype[:60]!r}, taken as text")
        ctype = "text/plain"
    if ctype in ("message/rfc822", "message/global"):
        _attach_message(part, part.get_payload(), body)
    elif ctype in _REPORT_TYPES:
        # Their field blocks look like parts to the parser; they are one report, not body text.
        if ctype == "message/delivery-status":
            body.reports.append(part)
        elif ctype == "message/feedback-report":
            body.feedback.append(part)
        blocks = part.get_payload()
        data = b"".join(_bytes(b, body) for b in blocks) if isinstance(blocks, list) else b""
        # Some gateways name the report ("details.txt"): keep the name the sender gave it.
        _attach(body, _filename(part, body), ctype, data, None)
    elif part.is_multipart():
        _walk_children(part, ctype, depth, body, alternative=alternative)
    else:
        _leaf(part, ctype, depth, body, alternative=alternative)


def _walk_children(part: Message, ctype: str, depth: int, body: Body, *, alternative: bool) -> None:
    children = part.get_payload()
    for child in children if isinstance(children, list) else []:
        if isinstance(child, Message):
            _walk(child, depth + 1, body, alternative=alternative or ctype.endswith("/alternative"))


def _leaf(part: Message, ctype: str, depth: int, body: Body, *, alternative: bool) -> None:
    filename = _filename(part, body)
    data = _payload(part)
    disposition = str(part.get("Content-Disposition", "")).split(";")[0].strip().lower()
    inline = filename is None and disposition != "attachment"
    if ctype.startswith("multipart/"):
        body.defects.append(f"{ctype} without a usable boundary; shown as text")
        _add_text(body, "plain", decode_bytes(data, _charset(part), "body plain", body.defects))
    elif inline and ctype in ("text/plain", "text/html"):
        _body_text(part, ctype[5:], data, body, alternative=alternative)
    elif ctype in _TNEF_TYPES or (filename or "").lower() == "winmail.dat":
        _tnef(data, filename, ctype, body)
    elif ctype in _PKCS7_TYPES:
        _pkcs7(part, data, filename, depth, body)
    else:
        if ctype == "text/rfc822-headers":
            body.originals.append(BytesParser(policy=RAW_POLICY).parsebytes(data, headersonly=True))
        _attach(body, filename, ctype, data, part.get("Content-ID"))


def _body_text(part: Message, kind: str, data: bytes, body: Body, *, alternative: bool) -> None:
    text = _unify_lines(decode_bytes(data, _charset(part), f"body {kind}", body.defects))
    if kind == "plain":
        text, files = uudecode(text, body.defects)
        _attach_files(body, files)
    if alternative and (body.text if kind == "plain" else body.html):
        return  # a second rendering of the same content
    _add_text(body, kind, text)


def _add_text(body: Body, kind: str, text: str) -> None:
    (body.text if kind == "plain" else body.html).append(_unify_lines(text))


def _unify_lines(text: str) -> str:
    # One line-end convention for whoever shows or searches the text (and for uudecode).
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _attach_message(part: Message, children: object, body: Body) -> None:
    inner = children[0] if isinstance(children, list) and children else None
    if not isinstance(inner, Message):
        _attach(body, _filename(part, body) or "message.eml", "message/rfc822", b"", None)
        return
    body.originals.append(inner)
    data = _bytes(inner, body)
    subject = header_text(str(inner.get("Subject", "")), "attached message", body.defects)
    name = _filename(part, body) or f"{_safe_name(subject) or 'message'}.eml"
    _attach(body, name, part.get_content_type(), data, part.get("Content-ID"))


def _bytes(msg: object, body: Body) -> bytes:
    # The parser keeps no bytes of a message part: its content is the part written out.
    try:
        return msg.as_bytes(policy=RAW_POLICY) if isinstance(msg, Message) else b""
    except Exception as exc:  # the generator chokes on some broken parts
        body.defects.append(f"attached message: not writable ({type(exc).__name__})")
        return b""


def _tnef(data: bytes, filename: str | None, ctype: str, body: Body) -> None:
    tnef = untnef(data, body.defects)
    if tnef is None:
        _attach(body, filename or "winmail.dat", ctype, data, None)
        return
    _attach_files(body, tnef.files)
    # The TNEF body is Outlook's copy of the mail's body: only used when the mail has none.
    if tnef.text and not body.text:
        _add_text(body, "plain", tnef.text)
    if tnef.html and not body.html:
        _add_text(body, "html", tnef.html)


def _pkcs7(part: Message, data: bytes, filename: str | None, depth: int, body: Body) -> None:
    smime_type = str(part.get_param("smime-type") or "").lower()
    content = None if smime_type == "enveloped-data" else signed_content(data)
    if content is not None:
        inner = BytesParser(policy=RAW_POLICY).parsebytes(content)
        _walk(inner, depth + 1, body, alternative=False)
    elif smime_type == "enveloped-data":
        body.defects.append("S/MIME encrypted content; not readable without the key")
    else:
        body.defects.append("S/MIME part without readable signed content")
    _attach(body, filename or "smime.p7m", part.get_content_type(), data, None)


def _attach_files(body: Body, files: list[Extracted]) -> None:
    for file in files:
        _attach(body, file.filename, file.content_type, file.data, None)


def _attach(body: Body, name: str | None, ctype: str, data: bytes, cid: object) -> None:
    if len(body.attachments) >= MAX_PARTS:
        body.unlisted += 1
        return
    raw_cid = unescape_8bit(str(cid), "Content-ID", body.defects) if cid else ""
    content_id = " ".join(raw_cid.split())[:998]
    body.attachments.append(
        Attachment(filename=name, content_type=ctype, size=len(data), content_id=content_id or None)
    )
    if body.contents is not None:
        body.contents.append(data)


def _filename(part: Message, body: Body) -> str | None:
    defects = body.defects
    try:
        value = part.get_param("filename", None, "content-disposition")
        if value is None:
            value = part.get_param("name", None, "content-type")
    except Exception as exc:  # RFC 2231 parameters the stdlib cannot take apart
        defects.append(f"attachment filename: {type(exc).__name__}")
        return None
    if value is None:
        return None
    name = _rfc2231(value, defects) if isinstance(value, tuple) else email.utils.unquote(value)
    decoded = header_text(name, "attachment filename", defects, body.charset)
    if "\ufffd" in decoded:
        defects.append(f"attachment filename: undecodable bytes replaced in {decoded[:80]!r}")
    # Some clients send the sender's full path; whoever saves the file must not get one.
    base = decoded.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return base or decoded or None


def _rfc2231(value: tuple[str | None, str | None, str], defects: list[str]) -> str:
    """An RFC 2231 value (``filename*=charset'lang'%XX..``) decoded like any text: a wrong or
    unknown charset is detected, never replaced (the stdlib falls back to Latin-1 or U+FFFD)."""
    charset, _language, text = value
    try:
        # The stdlib unquotes the %XX bytes into Latin-1 characters: one character per byte.
        data = text.encode("latin-1")
    except UnicodeEncodeError:  # 8-bit text written as is, already decoded with the header
        return text
    return decode_bytes(data, charset or None, "attachment filename", defects)


def _safe_name(subject: str) -> str:
    # A file name for an attached mail: the subject without path separators, kept short.
    return "".join(c for c in subject if c not in '/\\:*?"<>|').strip()[:80]


def _charset(part: Message) -> str | None:
    try:
        return part.get_content_charset()
    except Exception:  # an RFC 2231 charset parameter the stdlib cannot take apart
        return None


def _payload(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:  # e.g. a transfer encoding the stdlib trips over; keep what is there
        raw = part.get_payload()
        data = raw.encode("utf-8", errors="surrogateescape") if isinstance(raw, str) else b""
    return data if isinstance(data, bytes) else b""
