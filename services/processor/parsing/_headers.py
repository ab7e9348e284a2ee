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

from pydantic import ValidationError

from services.processor.parsing._decode import header_text, unescape_8bit
from shared.models.messages import MailAddress

MESSAGE_ID = re.compile(r"<[^<>\s]{1,998}>")
# Generous for References of long threads, small enough to keep decoding cheap.
MAX_HEADER_CHARS = 32 * 1024
MAX_ADDRESSES = 1000
MAX_REFERENCES = 500


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
    text = str(value).replace("\r", "").replace("\n", "")
    if len(text) > MAX_HEADER_CHARS:
        defects.append(f"{name}: header of {len(text)} characters cut to {MAX_HEADER_CHARS}")
        text = text[:MAX_HEADER_CHARS]
    return unescape_8bit(text, name, defects)


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


def addresses(msg: Message, name: str, defects: list[str]) -> list[MailAddress]:
    """The mailboxes of an address header, display names decoded, invalid ones as defects."""
    value = raw(msg, name, defects)
    if not value:
        return []
    # Split before decoding: a decoded display name may contain commas or angle brackets.
    try:
        pairs = email.utils.getaddresses([value])
    except RecursionError:  # the stdlib reads nested comments "((((" by recursion
        defects.append(f"{name}: comments nested too deep to read the addresses")
        return []
    result: list[MailAddress] = []
    for display, addr in pairs[:MAX_ADDRESSES]:
        if not addr:
            continue
        try:
            result.append(
                MailAddress(name=header_text(display, name, defects), address=addr.strip())
            )
        except ValidationError:
            defects.append(f"{name}: invalid address {addr[:80]!r}")
    if not result and pairs == [("", "")] and not value.rstrip().endswith(";"):
        # (an empty group such as "undisclosed-recipients:;" is well-formed)
        defects.append(f"{name}: no address in {value[:80]!r}")
    return result
