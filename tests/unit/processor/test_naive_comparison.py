"""Mailroom never loses an address, a header or an attachment a naive stdlib parse finds.

The naive parse is what a quick script does: ``email.message_from_bytes`` and
``email.utils.getaddresses`` on From, To, Cc, Reply-To and Sender, every header name, every
part with a file name. It runs over the conformance set and the corpus. Comparison rules:
addresses compare case-insensitively and without a trailing dot after the domain (Mailroom
drops it); a naive "address" without ``@`` counts only where the header names it alone
(``MAILER-DAEMON``, ``<postmaster>``), since getaddresses also turns "not an address" into
``not``, and a source route's "@hop" is no address either; file names compare after RFC 2047
decoding, unfolding and without a client's path. Left out on purpose: names the naive parse
could not decode (replacement characters: Mailroom decodes them by detection), a winmail.dat
(Mailroom lists the files inside it instead), parts beyond Mailroom's 1,000-part bound.
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
MAILS = sorted([*DATA.glob("conformance/*.eml"), *DATA.glob("mail/*.eml")])
_TNEF = {"application/ms-tnef", "application/vnd.ms-tnef"}
_FIELDS = {"From": "from_", "To": "to", "Cc": "cc", "Reply-To": "reply_to", "Sender": "sender"}


@pytest.mark.parametrize("path", MAILS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_nothing_the_naive_parse_finds_is_lost(path: Path) -> None:
    raw = path.read_bytes()
    naive = email.message_from_bytes(raw)
    mail = parse(raw)
    for header, attribute in _FIELDS.items():
        values = [str(v) for v in naive.get_all(header, [])]
        wanted = {_norm(a) for _, a in email.utils.getaddresses(values) if _real(a, values)}
        found = {_norm(a.address) for a in getattr(mail, attribute)}
        assert wanted <= found, (header, wanted - found)
    names = {n.strip().lower() for n, _ in mail.headers}
    assert {n.strip().lower() for n, _ in naive.items()} <= names
    assert _naive_files(naive) <= {a.filename for a in mail.attachments}


def test_the_comparison_covers_the_whole_set() -> None:
    assert len(MAILS) >= 240


def _norm(address: str) -> str:
    return address.strip().rstrip(".").lower()


def _real(address: str, values: list[str]) -> bool:
    if "@" in address:
        return not address.startswith("@")
    word = re.escape(address)
    alone = rf"<{word}>|(?:^|[,:])\s*{word}\s*(?:\([^()]*\))?\s*(?:[,;]|$)"
    return bool(address) and any(re.search(alone, " ".join(v.split())) for v in values)


def _naive_files(naive: email.message.Message) -> set[str | None]:
    found: set[str | None] = set()
    for index, part in enumerate(naive.walk()):
        if index >= MAX_PARTS or part.get_content_type() in _TNEF:
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
