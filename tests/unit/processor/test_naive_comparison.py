"""Mailroom never loses an address, a header or an attachment a naive stdlib parse finds, and
never reads a subject or a display name worse than it.

The naive parse is what a quick script does: ``email.message_from_bytes`` and
``email.utils.getaddresses`` on From, To, Cc, Reply-To and Sender, every header name, every
part with a file name, the Subject and display names decoded with ``email.header``. It runs
over the conformance set and the corpus. A subject or display name must read as the naive one
does (whitespace aside) unless Mailroom says in its defects why it reads it otherwise (a
charset it corrected, a word it could not decode and kept, a header block it repaired, a
bound): it never differs silently. Comparison rules:
addresses compare case-insensitively and without a trailing dot after the domain (Mailroom
drops it); a naive "address" without ``@`` counts only where the header names it alone
(``MAILER-DAEMON``, ``<postmaster>``), since getaddresses also turns "not an address" into
``not``, and a source route's "@hop" is no address either, nor "Doe" in Outlook's unquoted
``Doe, John <john@host>`` (Mailroom reads it as the name "Doe, John" and says so in a
defect); file names compare after RFC 2047 decoding, unfolding and without a client's path,
and may differ where Mailroom says in a defect that it decoded one otherwise.
Left out on purpose: names the naive parse could not decode (replacement characters: Mailroom
decodes them by detection), a winmail.dat (Mailroom lists the files inside it instead), the
files inside an attached mail (Mailroom keeps that mail whole as one ``.eml`` attachment),
parts beyond Mailroom's 1,000-part bound.
"""

from __future__ import annotations

import email
import email.header
import email.utils
import re
from pathlib import Path

import pytest

from services.processor.parsing import parse
from services.processor.parsing._parts import MAX_PARTS

DATA = Path(__file__).parents[2] / "data"
MAILS = sorted(
    [*DATA.glob("conformance/*.eml"), *DATA.glob("mail/*.eml"), *DATA.glob("flufl-bounce/*.txt")]
)
_TNEF = {"application/ms-tnef", "application/vnd.ms-tnef"}
_MESSAGES = {"message/rfc822", "message/global"}
_FIELDS = {"From": "from_", "To": "to", "Cc": "cc", "Reply-To": "reply_to", "Sender": "sender"}
# Surrogate escapes: 8-bit header bytes the stdlib left undecoded.
_UNDECODED = re.compile("[\udc80-\udcff]")
_RUN_TOGETHER = re.compile(r'.*\S\s+([^\s"<>@]+@[^\s"<>@]+)')
_HEAD_REPAIR = re.compile(r"broken fold|before the headers")


@pytest.mark.parametrize("path", MAILS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_nothing_the_naive_parse_finds_is_lost(path: Path) -> None:
    raw = path.read_bytes()
    naive = email.message_from_bytes(raw)
    mail = parse(raw)
    for header, attribute in _FIELDS.items():
        values = [str(v) for v in naive.get_all(header, [])]
        wanted = {_norm(a) for _, a in email.utils.getaddresses(values) if _real(a, values)}
        found = {_norm(a.address) for a in getattr(mail, attribute)}
        lost = {a for a in wanted - found if not _read_as_name(a, header, mail.defects)}
        assert not lost, (header, lost)
    names = {n.strip().lower() for n, _ in mail.headers}
    assert {n.strip().lower() for n, _ in naive.items()} <= names
    files = _naive_files(naive)
    named = {a.filename for a in mail.attachments if a.filename}
    if not files <= named:
        # A name Mailroom decoded otherwise (a charset label it found wrong) and said so; the
        # file itself is still listed.
        assert any(d.startswith("attachment filename:") for d in mail.defects), files - named
        assert len(named) >= len(files), (files, named)


@pytest.mark.parametrize("path", MAILS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_subjects_and_names_read_as_well_as_the_naive_parse(path: Path) -> None:
    raw = path.read_bytes()
    naive = email.message_from_bytes(raw)
    mail = parse(raw)
    subject = naive.get("Subject")
    wanted = None if subject is None else _naive_text(str(subject))
    if wanted is not None and _same(wanted) != _same(mail.subject):
        assert _explained("Subject", mail.defects), (wanted, mail.subject, mail.defects)
    for header, attribute in _FIELDS.items():
        values = [str(v) for v in naive.get_all(header, [])]
        for display, address in email.utils.getaddresses(values):
            name = _naive_text(display) if display and "@" in address else None
            if name is None:
                continue
            found = [
                _same(a.name)
                for a in getattr(mail, attribute)
                if _norm(a.address) == _norm(address)
            ]
            if _same(name) not in found:
                assert _explained(header, mail.defects), (header, name, found, mail.defects)


def _naive_text(value: str) -> str | None:
    """The header text as the stdlib decodes it, or None where it could not (replacement
    characters or undecoded 8-bit bytes: nothing to compare against)."""
    try:
        text = str(email.header.make_header(email.header.decode_header(value)))
    except (ValueError, LookupError, UnicodeError):
        return None
    if "\ufffd" in text or _UNDECODED.search(text):
        return None
    return text


def _same(text: str) -> str:
    # The stdlib and Mailroom differ in the whitespace between encoded and plain words.
    return " ".join(text.split())


def _explained(header: str, defects: list[str]) -> bool:
    return any(d.startswith(f"{header}:") or _HEAD_REPAIR.search(d) for d in defects)


def test_the_comparison_covers_the_whole_set() -> None:
    assert len(MAILS) >= 240


def _norm(address: str) -> str:
    # getaddresses runs 'Name user@host' (no angle brackets) together: the address is the end.
    apart = _RUN_TOGETHER.fullmatch(address.strip())
    return (apart.group(1) if apart else address).strip().rstrip(".").lower()


def _real(address: str, values: list[str]) -> bool:
    if "@" in address:
        return not address.startswith("@")
    word = re.escape(address)
    alone = rf"<{word}>|(?:^|[,:])\s*{word}\s*(?:\([^()]*\))?\s*(?:[,;]|$)"
    return bool(address) and any(re.search(alone, " ".join(v.split())) for v in values)


def _read_as_name(address: str, header: str, defects: list[str]) -> bool:
    # "Doe, John <j@host>": the naive parse lists a mailbox "Doe", Mailroom the name "Doe, John".
    said = f"{header}: unquoted comma read as part of the name '".lower()
    return "@" not in address and any(d.lower().startswith(said + address + ",") for d in defects)


def _naive_files(naive: email.message.Message) -> set[str | None]:
    found: set[str | None] = set()
    inside = {id(p) for m in naive.walk() if m.get_content_type() in _MESSAGES for p in _below(m)}
    for index, part in enumerate(naive.walk()):
        if index >= MAX_PARTS or part.get_content_type() in _TNEF or id(part) in inside:
            continue
        try:
            name = part.get_filename()
        except Exception:  # the naive parse gives up on this part: nothing to compare
            name = None
        if name:
            decoded = str(email.header.make_header(email.header.decode_header(name)))
            decoded = re.sub(r"\r?\n", "", decoded)
            if "\ufffd" not in decoded:
                found.add(decoded.replace("\\", "/").rsplit("/", 1)[-1].strip())
    return found


def _below(message: email.message.Message) -> list[email.message.Message]:
    return [p for p in message.walk() if p is not message]
