"""The IMAP adapter's own ``UID FETCH`` command, on aioimaplib 2.0.3.

aioimaplib's FetchCommand costs the fetcher twice per mail, which a bulk fetch cannot afford:

- it gathers a literal in a ``bytearray``, and turning that into the ``bytes`` the rest of
  Mailroom keeps is a second copy of every mail (100 MiB at once for a 50 MiB mail);
- after every line it re-reads the whole response so far to see whether the parentheses of
  the current ``n FETCH (...)`` are closed: quadratic in the number of mails per FETCH.

Here a literal is written into an ``io.BytesIO``, whose ``getvalue()`` hands its buffer over
as ``bytes`` without copying, and the parentheses are counted once per line as it arrives.
The timeout still restarts with every chunk received, as aioimaplib's does.
"""

from __future__ import annotations

import asyncio
import io
import re

import aioimaplib

from shared.mailbox._imap_parse import Literal

_FETCH_START = re.compile(rb"[0-9]+ FETCH \(")


class UidFetch(aioimaplib.FetchCommand):  # type: ignore[misc]  # untyped library class
    """``UID FETCH uids parts`` whose literals arrive in the response as :class:`Literal`."""

    def __init__(
        self, tag: str, uids: str, parts: str, *, loop: asyncio.AbstractEventLoop, timeout: float
    ) -> None:
        super().__init__(tag, uids, parts, prefix="UID", loop=loop, timeout=timeout)
        self._literal = io.BytesIO()
        self._open = 0  # parentheses opened and not yet closed since the last "n FETCH ("

    def begin_literal_data(self, expected_size: int, literal_data: bytes = b"") -> bytes:
        """Start a literal of ``expected_size`` bytes; returns what is left of ``literal_data``."""
        self._expected_size = expected_size
        self._literal = io.BytesIO()
        return self.append_literal_data(literal_data)

    def wait_literal_data(self) -> bool:
        """True while the current literal misses bytes."""
        return bool(self._expected_size) and self._literal.tell() != self._expected_size

    def append_literal_data(self, data: bytes) -> bytes:
        """Take the literal's part of ``data``; returns the bytes after the literal."""
        missing = self._expected_size - self._literal.tell()
        self._literal.write(memoryview(data)[:missing])
        if not self.wait_literal_data():
            # Straight to the response: a literal's parentheses are data, not syntax.
            aioimaplib.Command.append_to_resp(self, Literal(self._literal.getvalue()))
            self._expected_size = 0
            self._literal = io.BytesIO()
        self._reset_timer()
        return data[missing:]

    def append_to_resp(self, line: bytes, result: str = "Pending") -> None:
        """Record a response line and keep the count of open parentheses."""
        if _FETCH_START.match(line):
            self._open = 0
        self._open += line.count(b"(") - line.count(b")")
        super().append_to_resp(line, result)

    def wait_data(self) -> bool:
        """True while the current ``n FETCH (...)`` is not closed."""
        return self._open != 0
