"""Content hidden inside other content: uuencoded files, TNEF (winmail.dat), S/MIME signed-data.

The S/MIME part reads just enough DER to take the signed content out of a CMS SignedData
structure: ``cryptography`` verifies signatures but has no API that returns the content of an
opaque-signed message, and showing the content is all the processor needs (the signature stays
attached for whoever wants to verify it).
"""

from __future__ import annotations

import binascii
import mimetypes
import re
from dataclasses import dataclass

from tnefparse.tnef import TNEF

_UU_BEGIN = re.compile(r"begin [0-7]{3,4} (\S[^\r\n]*)$")
_SIGNED_DATA = bytes.fromhex("2a864886f70d010702")  # OID 1.2.840.113549.1.7.2
_MAX_DER_DEPTH = 8


@dataclass
class Extracted:
    """A file found inside another part."""

    filename: str
    content_type: str
    data: bytes


def guess_type(filename: str) -> str:
    """A content type for a file name, application/octet-stream when unknown."""
    return mimetypes.guess_type(filename, strict=False)[0] or "application/octet-stream"


def uudecode(text: str, defects: list[str]) -> tuple[str, list[Extracted]]:
    """Take uuencoded blocks out of a text body: the remaining text and the decoded files.

    One pass over the lines (a regex over the whole text would rescan it for every "begin");
    a block without its "end" line was not uuencode after all and stays in the text.
    """
    if "begin " not in text:
        return text, []
    kept: list[str] = []
    files: list[Extracted] = []
    name: str | None = None
    block: list[str] = []
    for line in text.split("\n"):
        begin = _UU_BEGIN.match(line) if name is None else None
        if begin:
            name, block = begin.group(1).strip(), [line]
        elif name is None:
            kept.append(line)
        elif line.rstrip() == "end":
            data = b"".join(_uu_line(encoded, defects) for encoded in block[1:])
            files.append(Extracted(name, guess_type(name), data))
            name, block = None, []
        else:
            block.append(line)
    return "\n".join(kept + block) if files else text, files


def _uu_line(line: str, defects: list[str]) -> bytes:
    if not line or line in {"`", " "}:
        return b""
    try:
        return binascii.a2b_uu(line)
    except (binascii.Error, ValueError):
        # Some encoders pad lines with junk after the data; the first byte says how much is real.
        length = (ord(line[0]) - 32) & 63
        try:
            return binascii.a2b_uu(line[: (length * 4 + 5) // 3 + 1])
        except (binascii.Error, ValueError):
            defects.append("uuencode: undecodable line skipped")
            return b""


@dataclass
class Tnef:
    """What a winmail.dat holds."""

    files: list[Extracted]
    text: str | None
    html: str | None


def untnef(data: bytes, defects: list[str]) -> Tnef | None:
    """Decode a TNEF blob, or None (with a defect) when it is not one."""
    try:
        tnef = TNEF(data, do_checksum=False)
        files = [
            Extracted(name, guess_type(name), bytes(att.data))
            for att in tnef.attachments
            for name in [_text(att.long_filename()) or "attachment.bin"]
        ]
        return Tnef(files, _text(tnef.body), _text(tnef.htmlbody))
    except Exception as exc:  # tnefparse raises anything from struct.error to ValueError
        defects.append(f"winmail.dat: not decodable TNEF ({type(exc).__name__})")
        return None


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace").rstrip("\x00") or None
    if isinstance(value, str):
        return value.rstrip("\x00") or None
    return None


def signed_content(der: bytes) -> bytes | None:
    """The content of a CMS SignedData (opaque-signed S/MIME), or None if it has none."""
    try:
        info = _children(der, 0, len(der), 0)[0]  # ContentInfo
        oid, explicit = _children(der, info[1], info[2], 1)[:2]
        if der[oid[1] : oid[2]] != _SIGNED_DATA:
            return None
        signed = _children(der, explicit[1], explicit[2], 1)[0]
        encap = _children(der, signed[1], signed[2], 2)[2]  # version, digestAlgorithms, encap
        content = _children(der, encap[1], encap[2], 3)[1]  # eContentType, [0] eContent
        return _octets(der, content[1], content[2], 4)
    except (IndexError, ValueError):
        return None


def _octets(der: bytes, start: int, end: int, depth: int) -> bytes:
    # The [0] holds one OCTET STRING, which BER encoders may split into constructed chunks.
    out = bytearray()
    for tag, body_start, body_end in _children(der, start, end, depth):
        if tag & 0x20:
            out += _octets(der, body_start, body_end, depth + 1)
        else:
            out += der[body_start:body_end]
    return bytes(out)


def _children(der: bytes, start: int, end: int, depth: int) -> list[tuple[int, int, int]]:
    """The (tag, body start, body end) of each TLV between start and end."""
    found: list[tuple[int, int, int]] = []
    pos = start
    while pos < end:
        tag, body_start, body_end, pos = _tlv(der, pos, end, depth)
        found.append((tag, body_start, body_end))
    return found


def _tlv(der: bytes, pos: int, end: int, depth: int) -> tuple[int, int, int, int]:
    """The TLV at pos: tag, body start, body end and the position after it."""
    if depth > _MAX_DER_DEPTH:
        raise ValueError("DER nested too deep")
    tag, length = der[pos], der[pos + 1]
    pos += 2
    if length == 0x80:  # BER indefinite length: the body runs to an end-of-contents marker
        body_end = pos
        while der[body_end] or der[body_end + 1]:
            body_end = _tlv(der, body_end, end, depth + 1)[3]
        return tag, pos, body_end, body_end + 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(der[pos : pos + count], "big")
        pos += count
    if pos + length > end:
        raise ValueError("DER length past the end")
    return tag, pos, pos + length, pos + length
