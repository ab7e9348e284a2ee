"""Parsing real-world mail: encoded headers, broken parts, auto-replies."""

from __future__ import annotations

import pytest

from services.processor.parsing import parse
from shared.errors import Permanent

SIMPLE = (
    b"From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.org>\r\n"
    b"To: Support <support@example.com>, other@example.com\r\n"
    b"Subject: =?iso-8859-1?q?Dr=FCcker_kaputt?= [Case#10001]\r\n"
    b"Message-ID: <abc@example.org>\r\n"
    b"In-Reply-To: <ack-1@example.com>\r\n"
    b"References: <first@example.org>\r\n <ack-1@example.com>\r\n"
    b"Date: Mon, 23 Nov 2026 10:00:00 +0100\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
    b"Hallo, der Drucker ist kaputt.\r\n"
)


def test_headers_are_decoded() -> None:
    mail = parse(SIMPLE)
    assert mail.subject == "Drücker kaputt [Case#10001]"
    assert mail.from_[0].name == "Jürgen Müller"
    assert str(mail.from_[0].address) == "juergen@example.org"
    assert [str(a.address) for a in mail.to] == ["support@example.com", "other@example.com"]
    assert mail.message_id == "<abc@example.org>"
    assert mail.in_reply_to == "<ack-1@example.com>"
    assert mail.references == ["<first@example.org>", "<ack-1@example.com>"]
    assert mail.date is not None and mail.date.utcoffset() is not None
    assert mail.text is not None and "Drucker" in mail.text
    assert mail.classification == "normal"


def test_multipart_with_attachment() -> None:
    raw = (
        b"From: a@example.org\r\nSubject: files\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        b"--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b"--b1\r\nContent-Type: text/html\r\n\r\n<p>see attached</p>\r\n"
        b"--b1\r\nContent-Type: application/pdf\r\n"
        b"Content-Disposition: attachment; filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n"
    )
    mail = parse(raw)
    assert mail.text is not None and mail.text.strip() == "see attached"
    assert mail.html is not None and "<p>" in mail.html
    pdf = next(a for a in mail.attachments if a.content_type == "application/pdf")
    assert pdf.filename == "Rechnung März.pdf"
    assert pdf.size == len(b"%PDF-1.4\n")


def test_unknown_charset_keeps_the_text_and_records_a_defect() -> None:
    raw = (
        b"From: a@example.org\r\nSubject: x\r\n"
        b"Content-Type: text/plain; charset=x-unknown-42\r\n\r\nplain words\r\n"
    )
    mail = parse(raw)
    assert mail.text is not None and "plain words" in mail.text
    assert any("body plain" in d for d in mail.defects)


@pytest.mark.parametrize(
    "header",
    [b"Auto-Submitted: auto-replied", b"Precedence: bulk", b"X-Autoreply: yes"],
)
def test_auto_replies_are_classified(header: bytes) -> None:
    raw = b"From: a@example.org\r\nSubject: Out of office\r\n" + header + b"\r\n\r\nbody\r\n"
    assert parse(raw).classification == "auto_reply"


def test_auto_submitted_no_is_a_normal_mail() -> None:
    raw = b"From: a@example.org\r\nSubject: hi\r\nAuto-Submitted: no\r\n\r\nbody\r\n"
    assert parse(raw).classification == "normal"


def test_invalid_address_is_a_defect_not_a_failure() -> None:
    raw = b"From: not an address\r\nSubject: hi\r\n\r\nbody\r\n"
    mail = parse(raw)
    assert mail.from_ == []
    assert any(d.startswith("From") for d in mail.defects)


@pytest.mark.parametrize("raw", [b"", b"   \r\n", b"just some text without headers"])
def test_not_a_mail_is_permanent(raw: bytes) -> None:
    with pytest.raises(Permanent, match="unparseable mail"):
        parse(raw)
