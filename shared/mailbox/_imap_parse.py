"""Pure helpers of the IMAP adapter: reading aioimaplib's responses, writing UID sets and
folder names. Kept apart from the I/O so that every server quirk has a unit test.

How aioimaplib 2.0.3 hands a response over (``Response.lines``): untagged lines without
their ``* ``, then the text of the tagged status line last. A literal (``... {size}`` at the
end of a line) arrives as a ``bytearray`` right after the line that announced it, followed
by the rest of that line (for a FETCH usually ``b')'``). The adapter's own FETCH
(``_imap_fetch``) hands its literals over as :class:`Literal` instead, without a copy.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Literal:
    """A literal exactly as received, already as ``bytes`` (aioimaplib's own are
    ``bytearray``, which would need one more copy of every mail)."""

    data: bytes


Line = bytes | bytearray
BodyLine = Line | Literal

TEMPORARY_CODES = frozenset({"UNAVAILABLE", "INUSE", "SERVERBUG", "LIMIT", "OVERQUOTA"})
"""RFC 5530 response codes that say "try again later" rather than "this will never work"."""

_UIDS_ONLY = re.compile(rb"[0-9 ]*")
_BODY_LITERAL = re.compile(rb"BODY\[(?:HEADER)?\] \{(\d+)\}$")
_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_FETCH = re.compile(rb"^\d+ FETCH \(")
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_EXISTS = re.compile(rb"^(\d+) EXISTS\b")
_CODE = re.compile(r"^\[([A-Z0-9-]+)[\] ]")
_LIST = re.compile(r'^(?:LIST )?\(([^)]*)\) (?:"(?:[^"\\]|\\.)*"|NIL) (.+)$', re.IGNORECASE)


class ImapProtocolError(ValueError):
    """The server's answer does not follow the protocol (truncated literal, no UID)."""


def quote(text: str) -> str:
    """``text`` as an IMAP quoted string (RFC 3501 section 9, ``quoted``)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def encode_folder(name: str) -> str:
    """A folder name as a quoted IMAP mailbox argument in modified UTF-7 (RFC 3501 5.1.3)."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            utf16 = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(utf16).rstrip(b"=").decode().replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if " " <= char <= "~":
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return quote("".join(out))


def decode_folder(name: str) -> str:
    """A folder name from modified UTF-7 (RFC 3501 5.1.3) back to text."""

    def shifted(match: re.Match[str]) -> str:
        encoded = match.group(1)
        if not encoded:
            return "&"
        padded = encoded.replace(",", "/") + "=" * (-len(encoded) % 4)
        return base64.b64decode(padded).decode("utf-16-be", "replace")

    return re.sub(r"&([A-Za-z0-9+,]*)-", shifted, name)


def parse_list(lines: Sequence[Line]) -> list[str]:
    """The selectable folders in the answer to ``LIST "" "*"`` (``\\Noselect`` ones, mere
    levels of the hierarchy, left out), decoded."""
    folders: list[str] = []
    pending_literal = False
    for raw in lines:
        if not isinstance(raw, bytes | bytearray):
            continue
        line = bytes(raw).decode("utf-8", "replace").strip()
        if pending_literal:
            folders.append(decode_folder(line))
            pending_literal = False
            continue
        match = _LIST.match(line)
        if match is None or "\\noselect" in match.group(1).lower():
            continue
        name = match.group(2)
        if re.fullmatch(r"\{\d+\}", name):  # the name follows as a literal
            pending_literal = True
            continue
        if name.startswith('"') and name.endswith('"') and len(name) >= 2:
            name = re.sub(r"\\(.)", r"\1", name[1:-1])
        folders.append(decode_folder(name))
    return folders


def uid_set(uids: Iterable[int]) -> str:
    """A compact UID set: consecutive UIDs become ranges (``1:3,7,9:10``).

    Only runs of consecutive numbers are merged, so the set never names a UID that was not
    asked for.
    """
    ordered = sorted(set(uids))
    if not ordered:
        raise ValueError("an IMAP UID set cannot be empty")
    parts: list[str] = []
    start = prev = ordered[0]
    for uid in [*ordered[1:], None]:
        if uid is not None and uid == prev + 1:
            prev = uid
            continue
        parts.append(str(start) if start == prev else f"{start}:{prev}")
        if uid is not None:
            start = prev = uid
    return ",".join(parts)


def parse_search(lines: Sequence[Line], *, after_uid: int) -> list[int]:
    """The UIDs above ``after_uid`` in the answer to ``UID SEARCH UID n:*``, ascending.

    ``n:*`` always matches the highest UID in the folder, even when it is below n (a range
    is unordered and ``*`` is the highest UID in use, RFC 3501 6.4.8), hence the filter.
    """
    found: set[int] = set()
    for line in lines[:-1]:
        if isinstance(line, bytes) and _UIDS_ONLY.fullmatch(line):
            found.update(int(token) for token in line.split())
    return sorted(uid for uid in found if uid > after_uid)


def parse_sizes(lines: Sequence[Line]) -> dict[int, int]:
    """UID → size from the answer to ``UID FETCH set (UID RFC822.SIZE)``."""
    sizes: dict[int, int] = {}
    for line in lines:
        if isinstance(line, bytes) and _FETCH.match(line):
            uid, size = _UID.search(line), _SIZE.search(line)
            if uid and size:
                sizes[int(uid.group(1))] = int(size.group(1))
    return sizes


def parse_bodies(lines: Sequence[BodyLine]) -> dict[int, bytes]:
    """UID → raw message from the answer to ``UID FETCH set (UID BODY.PEEK[])`` (or the
    header block from ``BODY.PEEK[HEADER]``).

    The bytes are the literal exactly as received. The UID may come before the literal
    (``1 FETCH (UID 5 BODY[] {n}``) or after it (the line that follows, ``UID 5)``).
    Unsolicited FETCH lines (another client changed flags) carry no literal and are skipped.
    """
    bodies: dict[int, bytes] = {}
    for index, line in enumerate(lines):
        if not isinstance(line, bytes) or (announced := _BODY_LITERAL.search(line)) is None:
            continue
        literal = lines[index + 1] if index + 1 < len(lines) else None
        if isinstance(literal, Literal):
            data = literal.data
        elif isinstance(literal, bytearray):
            data = bytes(literal)
        else:
            raise ImapProtocolError("FETCH announced a message body but sent none")
        announced_size = int(announced.group(1))
        if len(data) != announced_size:
            raise ImapProtocolError(
                f"FETCH sent {len(data)} bytes of a message announced as {announced_size}"
            )
        rest = lines[index + 2] if index + 2 < len(lines) else b""
        uid = _UID.search(line) or (_UID.search(rest) if isinstance(rest, bytes) else None)
        if uid is None:
            raise ImapProtocolError("FETCH sent a message body without its UID")
        bodies[int(uid.group(1))] = data
    return bodies


def parse_select(lines: Sequence[Line]) -> tuple[int | None, int]:
    """(UIDVALIDITY, EXISTS) from the answer to SELECT."""
    uidvalidity: int | None = None
    exists = 0
    for line in lines:
        if not isinstance(line, bytes):
            continue
        if match := _UIDVALIDITY.search(line):
            uidvalidity = int(match.group(1))
        elif match := _EXISTS.match(line):
            exists = int(match.group(1))
    return uidvalidity, exists


def announces_new_mail(lines: Sequence[Line]) -> bool:
    """True when lines pushed during IDLE include ``n EXISTS`` (the folder grew)."""
    return any(isinstance(line, bytes) and _EXISTS.match(line) for line in lines)


def status_text(lines: Sequence[Line]) -> str:
    """The text of the tagged status line (aioimaplib puts it last)."""
    last = lines[-1] if lines else b""
    return bytes(last).decode("utf-8", "replace").strip()


def response_code(text: str) -> str | None:
    """The RFC 5530 response code at the start of a status text (``[UNAVAILABLE] ...``)."""
    match = _CODE.match(text)
    return match.group(1) if match else None


def size_groups(
    sizes: Sequence[tuple[int, int]], *, max_bytes: int, max_count: int
) -> list[list[int]]:
    """Split (UID, size) pairs, in order, into groups of at most ``max_count`` messages and
    ``max_bytes`` bytes; a message larger than ``max_bytes`` forms a group of its own."""
    groups: list[list[int]] = []
    current: list[int] = []
    total = 0
    for uid, size in sizes:
        if current and (len(current) >= max_count or total + size > max_bytes):
            groups.append(current)
            current, total = [], 0
        current.append(uid)
        total += size
    if current:
        groups.append(current)
    return groups
