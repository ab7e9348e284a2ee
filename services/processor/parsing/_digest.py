"""A digest of what the author wrote, the same for every copy of one mail.

Two copies of one mail differ in their trace: ``Received``, ``Return-Path``, ``Delivered-To``,
spam-filter and authentication results, and whatever else each server on the way adds. So the
digest reads only the fields the author's client writes and servers do not change (originator,
destination, identification and MIME fields) and the body, with line ends made uniform. Fields
outside that list are left out rather than listed as "trace": new trace headers appear every
year, new author fields practically never.
"""

from __future__ import annotations

import hashlib
import re

_AUTHOR_FIELDS = {
    b"from", b"sender", b"reply-to", b"to", b"cc", b"subject", b"date", b"message-id",
    b"in-reply-to", b"references", b"mime-version", b"content-type",
    b"content-transfer-encoding", b"content-disposition", b"content-id",
}  # fmt: skip
_END_OF_HEAD = re.compile(rb"\r?\n\r?\n")
_LINE_END = re.compile(rb"\r\n|\r|\n")


def content_digest(data: bytes) -> str:
    """SHA-256 (hex) of the author's header fields, in order, and the body."""
    end = _END_OF_HEAD.search(data)
    head, body = (data[: end.start()], data[end.end() :]) if end else (data, b"")
    kept: list[bytes] = []
    keep = False
    for line in _LINE_END.split(head):
        if line[:1] in (b" ", b"\t"):  # a fold belongs to the field before it
            if keep:
                kept.append(line.strip())
            continue
        name = line.split(b":", 1)[0].strip().lower()
        keep = name in _AUTHOR_FIELDS
        if keep:
            kept.append(b" ".join(line.split()))
    digest = hashlib.sha256(b"\n".join(kept))
    digest.update(b"\n\n")
    digest.update(_LINE_END.sub(b"\n", body).rstrip(b"\n"))
    return digest.hexdigest()
