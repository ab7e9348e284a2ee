"""Builders shared by the corpus generator: headers, parts, TNEF and CMS blobs.

The corpus is written by ``generate.py`` (``python -m tests.data.mail.generate``) and
committed; expectations are written by hand next to each mail, never computed by the parser.
"""

from __future__ import annotations

import base64
import quopri
import struct
from typing import Any

CRLF = b"\r\n"
DATE = b"Mon, 23 Nov 2026 10:00:00 +0100"
Expect = dict[str, Any]
Case = tuple[str, bytes, Expect]
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 3


def header_block(
    name: str,
    *,
    subject: bytes = b"Hello",
    sender: bytes = b"Alice Example <alice@example.org>",
    to: bytes = b"Support <support@example.com>",
    extra: tuple[bytes, ...] = (),
    content_type: bytes | None = b"text/plain; charset=utf-8",
    cte: bytes | None = None,
    date: bytes = DATE,
) -> bytes:
    """A header block (without the blank line) with the defaults most mails share."""
    lines = [
        b"From: " + sender,
        b"To: " + to,
        b"Subject: " + subject,
        b"Date: " + date,
        b"Message-ID: <" + name.encode() + b"@example.org>",
        b"MIME-Version: 1.0",
        *extra,
    ]
    if content_type is not None:
        lines.append(b"Content-Type: " + content_type)
    if cte is not None:
        lines.append(b"Content-Transfer-Encoding: " + cte)
    return CRLF.join(lines)


def mail(head: bytes, body: bytes) -> bytes:
    """Header block + blank line + body."""
    return head + CRLF + CRLF + body


def part(content_type: bytes, body: bytes, *extra: bytes, cte: bytes | None = None) -> bytes:
    """One MIME part (headers + body)."""
    lines = [b"Content-Type: " + content_type, *extra]
    if cte is not None:
        lines.append(b"Content-Transfer-Encoding: " + cte)
    return CRLF.join(lines) + CRLF + CRLF + body


def multipart(boundary: bytes, *parts: bytes, preamble: bytes = b"") -> bytes:
    """A multipart body with its closing boundary."""
    out = preamble
    for each in parts:
        out += b"--" + boundary + CRLF + each + CRLF
    return out + b"--" + boundary + b"--" + CRLF


def b64(data: bytes) -> bytes:
    """Base64 in 76-character lines."""
    return base64.encodebytes(data).replace(b"\n", CRLF)


def qp(data: bytes) -> bytes:
    """Quoted-printable with CRLF line ends."""
    return quopri.encodestring(data).replace(b"\n", CRLF)


def encode(text: str, charset: str) -> bytes:
    """``text`` in a MIME charset, including labels Python spells differently."""
    return text.encode({"windows-874": "cp874"}.get(charset, charset))


def encoded_word(text: str, charset: str, kind: str = "B") -> bytes:
    """An RFC 2047 encoded word."""
    data = encode(text, charset)
    if kind == "B":
        payload = base64.b64encode(data)
    else:
        payload = b"".join(
            bytes([c]) if (48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122) else b"=%02X" % c
            for c in data
        )
    return b"=?" + charset.encode() + b"?" + kind.encode() + b"?" + payload + b"?="


def tnef(files: list[tuple[str, bytes]], body: bytes | None) -> bytes:
    """A minimal TNEF stream: message body and attachments (title + data)."""

    def obj(level: int, name: int, kind: int, data: bytes) -> bytes:
        checksum = sum(data) & 0xFFFF
        return (
            struct.pack("<BHHI", level, name, kind, len(data)) + data + struct.pack("<H", checksum)
        )

    out = struct.pack("<IH", 0x223E9F78, 1)
    out += obj(1, 0x9006, 0x8, struct.pack("<I", 0x10000))
    if body is not None:
        out += obj(1, 0x800C, 0x2, body)
    for filename, data in files:
        out += obj(2, 0x9002, 0x6, b"\x00" * 14)
        out += obj(2, 0x8010, 0x1, filename.encode() + b"\x00")
        out += obj(2, 0x800F, 0x6, data)
    return out


def _der(tag: int, body: bytes) -> bytes:
    size = len(body)
    if size < 0x80:
        return bytes([tag, size]) + body
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + body


def signed_data(content: bytes) -> bytes:
    """A CMS SignedData (no signers) wrapping ``content``: enough to test extraction."""
    oid_signed = _der(0x06, bytes.fromhex("2a864886f70d010702"))
    oid_data = _der(0x06, bytes.fromhex("2a864886f70d010701"))
    encap = _der(0x30, oid_data + _der(0xA0, _der(0x04, content)))
    signed = _der(0x30, _der(0x02, b"\x01") + _der(0x31, b"") + encap + _der(0x31, b""))
    return _der(0x30, oid_signed + _der(0xA0, signed))


def mixed(name: str, subject: bytes, *parts: bytes, extra: tuple[bytes, ...] = ()) -> bytes:
    """A multipart/mixed mail with a boundary of its own."""
    boundary = b"==" + name.encode() + b"=="
    head = header_block(
        name,
        subject=subject,
        content_type=b'multipart/mixed; boundary="' + boundary + b'"',
        extra=extra,
    )
    return mail(head, multipart(boundary, *parts))


def att(filename: str | None, ctype: str, size: int | None) -> list[object]:
    """An expected attachment: name, type and decoded size (None: not checked)."""
    return [filename, ctype, size]
