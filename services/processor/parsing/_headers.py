"""Header fields → decoded values: addresses, Message-IDs, dates, text; each bounded in size.

The mail is parsed with :data:`RAW_POLICY`, which hands header values back exactly as they were
written; decoding happens here so that every failure becomes a defect instead of an exception
(the stdlib's ``policy.default`` raises on some broken headers and is slow on hostile ones).
"""

from __future__ import annotations

import email.utils
import re
from datetime import UTC, datetime
from email.message import Message
from email.policy import Compat32

from services.processor.parsing._addresses import parse_addresses
from services.processor.parsing._decode import header_text, unescape_8bit
from shared.models.records import ReceivedAddress

MESSAGE_ID = re.compile(r"<[^<>\s]{1,998}>")
# Generous for References of long threads, small enough to keep decoding cheap.
MAX_HEADER_CHARS = 32 * 1024
MAX_REFERENCES = 500
MAX_FIELDS = 1000
_HINT_PARTS = 20
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class _RawPolicy(Compat32):
    """Compat32 that returns header values untouched (no Header objects for 8-bit bytes)."""

    def header_fetch_parse(self, name: str, value: str) -> str:
        """Return the value as it was in the mail."""
        return value


RAW_POLICY = _RawPolicy(linesep="\r\n")


def raw(msg: Message, name: str, defects: list[str]) -> str:
    """The first value of header ``name`` (unfolded, bounded) or an empty string."""
    value = msg.get(name)
    if value is None:
        return ""
    return unescape_8bit(_bounded(str(value), name, defects), name, defects, charset_hint(msg))


def charset_hint(msg: Message) -> str | None:
    """The charset the mail declares for its first text part, unless it says nothing about
    8-bit bytes (US-ASCII, or UTF-8, which is tried first anyway)."""
    for index, part in enumerate(msg.walk()):
        if index >= _HINT_PARTS:  # a text part that far down says little about the headers
            return None
        if part.get_content_maintype() != "text":
            continue
        try:
            found = part.get_content_charset()
        except Exception:  # an RFC 2231 charset parameter the stdlib cannot take apart
            return None
        return None if found in (None, "us-ascii", "ascii", "utf-8", "utf8") else found
    return None


def _bounded(value: str, name: str, defects: list[str]) -> str:
    # Unfolding (RFC 5322 2.2.3) removes the line break of a fold and keeps its whitespace.
    text = _LINE_BREAK.sub("", value)
    if len(text) > MAX_HEADER_CHARS:
        defects.append(f"{name}: header of {len(text)} characters cut to {MAX_HEADER_CHARS}")
        text = text[:MAX_HEADER_CHARS]
    return text


def text(msg: Message, name: str, defects: list[str]) -> str:
    """The decoded text of header ``name``."""
    return header_text(raw(msg, name, defects), name, defects)


def first_id(msg: Message, name: str, defects: list[str]) -> str | None:
    """The first ``<...>`` Message-ID in header ``name``."""
    found = MESSAGE_ID.search(raw(msg, name, defects))
    return found.group(0) if found else None


def ids(msg: Message, name: str, defects: list[str]) -> list[str]:
    """Every ``<...>`` Message-ID in header ``name``, in order, bounded in number."""
    return MESSAGE_ID.findall(raw(msg, name, defects))[:MAX_REFERENCES]


def date(msg: Message, defects: list[str]) -> datetime | None:
    """The Date header as an aware datetime; one without a time zone is taken as UTC."""
    value = raw(msg, "Date", defects)
    if not value:
        return None
    try:
        found = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        defects.append(f"Date: unparseable {value[:60]!r}")
        return None
    if found.tzinfo is None:
        defects.append("Date: no time zone, taken as UTC")
        found = found.replace(tzinfo=UTC)
    return found


def addresses(msg: Message, name: str, defects: list[str]) -> list[ReceivedAddress]:
    """Every mailbox of every ``name`` header, display names decoded, none dropped."""
    values = [_bounded(str(v), name, defects) for v in msg.get_all(name, [])]
    hint = charset_hint(msg) if values else None
    value = ", ".join(unescape_8bit(v, name, defects, hint) for v in values if v.strip())
    return parse_addresses(value, name, defects)


def fields(msg: Message, defects: list[str]) -> list[tuple[str, str]]:
    """Every header field as written (unfolded, bounded), in order: nothing is dropped."""
    found: list[tuple[str, str]] = []
    hint = charset_hint(msg)
    for field_name, value in msg.items()[:MAX_FIELDS]:
        text = _bounded(str(value), field_name, defects)
        found.append((field_name, unescape_8bit(text, "", [], hint)))
    if len(msg) > MAX_FIELDS:
        defects.append(f"{len(msg)} header fields; only the first {MAX_FIELDS} listed")
    return found
