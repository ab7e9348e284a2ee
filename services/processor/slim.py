"""A big mail made small before parsing: MIME parts over the size limit are left out unread.

A mail over ``processor/max_mail_size_bytes`` is attached without its attachments anyway
(the ``size_limit`` script), yet parsing it whole decoded every part: a 43 MB mail took
440 MB. Instead the raw mail is read from the store chunk by chunk and copied line by line,
except the body of every leaf part larger than the limit: that body is neither kept nor
decoded, only counted, and the part keeps its header with ``X-Mailroom-Omitted-Bytes``. The
parser then sees a mail of a few kilobytes with the same structure, headers and texts. Peak
memory is the slim copy plus one chunk, plus one line (a mail that is one long line is held
once).

The scan follows MIME's boundaries (RFC 2046) by their delimiter lines only; a malformed
mail whose boundaries do not close is copied as far as they make sense, the rest being the
body of the last part (the parser reports its defects as for any mail).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesHeaderParser

OMITTED_HEADER = b"X-Mailroom-Omitted-Bytes"


@dataclass(frozen=True)
class Omitted:
    """One part left out: its type, file name and the size of its (encoded) body."""

    content_type: str
    filename: str | None
    size: int


@dataclass
class Slim:
    """The mail without its big parts, and what was left out (in the mail's order)."""

    data: bytes
    omitted: list[Omitted]


@dataclass
class _Scanner:
    limit: int
    out: bytearray = field(default_factory=bytearray)
    omitted: list[Omitted] = field(default_factory=list)
    boundaries: list[bytes] = field(default_factory=list)
    state: str = "header"  # header | leaf | copy
    header: list[bytes] = field(default_factory=list)
    body: list[bytes] = field(default_factory=list)
    body_size: int = 0
    dropped: bool = False

    def line(self, line: bytes) -> None:
        if self.state == "header":
            self.header.append(line)
            if line in (b"\r\n", b"\n"):
                self._header_done()
            return
        delimiter = self._delimiter(line)
        if delimiter is not None:
            self._close_leaf()
            self.out += line
            boundary, closing = delimiter
            while self.boundaries and self.boundaries[-1] != boundary:
                self.boundaries.pop()  # an inner multipart that never closed
            if closing:
                self.boundaries.pop()
                self.state = "copy"  # the epilogue, then the parent's next delimiter
            else:
                self.state = "header"
            return
        if self.state == "copy":
            self.out += line
            return
        self.body_size += len(line)
        if not self.dropped:
            self.body.append(line)
            if self.body_size > self.limit:
                self.dropped = True
                self.body = []

    def _delimiter(self, line: bytes) -> tuple[bytes, bool] | None:
        if not line.startswith(b"--") or not self.boundaries:
            return None
        text = line.rstrip()
        for boundary in reversed(self.boundaries):
            if text == b"--" + boundary:
                return boundary, False
            if text == b"--" + boundary + b"--":
                return boundary, True
        return None

    def _header_done(self) -> None:
        block = b"".join(self.header)
        parsed = BytesHeaderParser(policy=policy.compat32).parsebytes(block)
        boundary = parsed.get_boundary() if parsed.get_content_maintype() == "multipart" else None
        if boundary:
            self.out += block
            self.header = []
            self.boundaries.append(boundary.encode("ascii", "replace"))
            self.state = "copy"  # the preamble
            return
        self.state = "leaf"

    def _close_leaf(self) -> None:
        if self.state != "leaf":
            if self.state == "header":  # a part cut off inside its header
                self.out += b"".join(self.header)
                self.header = []
            return
        if self.dropped:
            parsed = BytesHeaderParser(policy=policy.compat32).parsebytes(b"".join(self.header))
            self.omitted.append(
                Omitted(parsed.get_content_type(), parsed.get_filename(), self.body_size)
            )
            *head, blank = self.header
            self.out += b"".join(head)
            self.out += OMITTED_HEADER + b": " + str(self.body_size).encode() + b"\r\n" + blank
        else:
            self.out += b"".join(self.header)
            self.out += b"".join(self.body)
        self.header, self.body, self.body_size, self.dropped = [], [], 0, False

    def finish(self) -> Slim:
        self._close_leaf()
        return Slim(bytes(self.out), self.omitted)


async def slim(chunks: AsyncIterator[bytes], *, limit: int) -> Slim:
    """The mail read from ``chunks`` with every leaf part whose body exceeds ``limit`` bytes
    left out (see the module docstring)."""
    scanner = _Scanner(limit)
    pending = bytearray()  # grows in place: one long line is not copied chunk after chunk
    async for chunk in chunks:
        pending += chunk
        start = 0
        while (end := pending.find(b"\n", start)) >= 0:
            scanner.line(bytes(pending[start : end + 1]))
            start = end + 1
        del pending[:start]
    if pending:
        scanner.line(bytes(pending))
    return scanner.finish()
