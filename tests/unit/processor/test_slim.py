"""A big mail is slimmed before parsing: parts over the limit are left out unread, the rest
(headers, texts, small attachments, structure) is kept (issue 14, defect 7)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.message import EmailMessage

from services.processor.parsing import parse
from services.processor.slim import OMITTED_HEADER, slim


def big_mail(attachment: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Sender <s@example.org>"
    msg["To"] = "support@example.com"
    msg["Subject"] = "With a big file"
    msg["Message-ID"] = "<big@example.org>"
    msg.set_content("Please see the files.\n")
    msg.add_alternative("<p>Please see the files.</p>", subtype="html")
    msg.add_attachment(b"small", maintype="text", subtype="plain", filename="small.txt")
    msg.add_attachment(
        b"\x00" * attachment, maintype="application", subtype="zip", filename="big.zip"
    )
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


async def chunked(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_the_big_part_is_left_out_and_the_rest_kept() -> None:
    data = big_mail(200_000)
    slimmed = await slim(chunked(data), limit=50_000)
    assert len(slimmed.data) < 5_000
    [omitted] = slimmed.omitted
    assert omitted.filename == "big.zip" and omitted.content_type == "application/zip"
    assert omitted.size > 200_000  # the encoded body, counted, not kept
    assert OMITTED_HEADER in slimmed.data
    mail = parse(slimmed.data, size=len(data))
    assert mail.subject == "With a big file" and mail.size == len(data)
    assert mail.text and "see the files" in mail.text and mail.html
    assert [a.filename for a in mail.attachments] == ["small.txt", "big.zip"]


async def test_a_mail_under_the_limit_is_copied_unchanged() -> None:
    data = big_mail(1_000)
    slimmed = await slim(chunked(data, 7), limit=50_000)
    assert slimmed.data == data and slimmed.omitted == []


async def test_a_single_part_mail_over_the_limit_keeps_its_header() -> None:
    data = b"From: a@example.org\r\nSubject: long\r\n\r\n" + b"x" * 100 + b"\r\n" * 3
    slimmed = await slim(chunked(data), limit=50)
    assert slimmed.data.startswith(b"From: a@example.org\r\nSubject: long\r\n")
    assert b"xxx" not in slimmed.data
