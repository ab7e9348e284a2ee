"""Building outgoing mail: headers, the subject round trip, loop prevention, threading."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from pydantic import ValidationError

from services.sender.compose import MAIL_POLICY, compose, derive_message_id
from shared.models.config import Addresses, GlobalSettings, SystemConfig, find_case_reference
from shared.models.messages import MailAddress, MailAttachment, OutgoingMail

CONFIG = SystemConfig(
    addresses=Addresses(
        from_address=MailAddress(name="Support Désk", address="support@example.com"),
        reply_to=MailAddress(address="replies@example.com"),
    )
)


def mail(**fields: Any) -> OutgoingMail:
    base: dict[str, Any] = {
        "mail_id": "ack-0123abcd",
        "kind": "notification",
        "automatic": True,
        "case_number": 10042,
        "to": [{"name": "Jörg Müller", "address": "joerg@example.org"}],
        "subject": "Drucker kaputt",
        "text": "Grüße,\nIhr Support\n",
        "sent_at": datetime(2025, 3, 1, 9, 30, tzinfo=UTC),
    }
    return OutgoingMail.model_validate({**base, **fields})


def on_the_wire(msg: EmailMessage) -> EmailMessage:
    """The message as a receiver parses it."""
    parsed = message_from_bytes(msg.as_bytes(), _class=EmailMessage, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_headers_and_body() -> None:
    msg = on_the_wire(compose(mail(), CONFIG))

    assert msg["From"].addresses[0].display_name == "Support Désk"
    assert msg["From"].addresses[0].addr_spec == "support@example.com"
    assert msg["Reply-To"] == "replies@example.com"
    assert msg["To"] == "Jörg Müller <joerg@example.org>"
    assert msg["Date"] == "Sat, 01 Mar 2025 09:30:00 +0000"
    assert msg["Message-ID"] == "<ack-0123abcd@example.com>"
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    assert msg.get_content().replace("\r\n", "\n") == "Grüße,\nIhr Support\n"


def test_subject_carries_the_case_reference_the_incoming_pattern_finds() -> None:
    subject = str(on_the_wire(compose(mail(), CONFIG))["Subject"])

    assert subject == "Drucker kaputt [Case#10042]"
    assert find_case_reference(GlobalSettings().incoming_subject_pattern, subject) == "10042"


def test_a_custom_template_is_used() -> None:
    config = CONFIG.model_copy(
        update={
            "settings": GlobalSettings(
                incoming_subject_pattern=r"Ticket (?P<case>\d+)",
                outgoing_subject_template="Ticket {{ case }}: {{ subject }}",
            )
        }
    )
    assert compose(mail(), config)["Subject"] == "Ticket 10042: Drucker kaputt"


def test_mail_without_a_case_keeps_its_subject() -> None:
    assert compose(mail(case_number=None), CONFIG)["Subject"] == "Drucker kaputt"


def test_automatic_mail_is_marked_auto_submitted_and_manual_mail_is_not() -> None:
    automatic = compose(mail(automatic=True), CONFIG)
    manual = compose(mail(automatic=False, kind="reply"), CONFIG)

    assert automatic["Auto-Submitted"] == "auto-generated"
    assert automatic["X-Auto-Response-Suppress"] == "All"
    assert "Auto-Submitted" not in manual and "X-Auto-Response-Suppress" not in manual


def test_message_id_is_derived_from_the_mail_id_alone() -> None:
    first = compose(mail(), CONFIG)
    again = compose(mail(correlation_id="another-delivery"), CONFIG)
    other = compose(mail(mail_id="ack-ffff"), CONFIG)

    assert first["Message-ID"] == again["Message-ID"] == "<ack-0123abcd@example.com>"
    assert other["Message-ID"] == "<ack-ffff@example.com>"
    assert first.as_bytes() == again.as_bytes()


def test_a_mail_id_that_is_no_dot_atom_is_hashed_not_pasted() -> None:
    derived = derive_message_id("a b>\r\nBcc: evil@example.net", "x@example.com")

    assert derived == derive_message_id("a b>\r\nBcc: evil@example.net", "x@example.com")
    assert derived.startswith("<") and derived.endswith("@example.com>")
    assert len(derived) == len("<@example.com>") + 64
    assert "\n" not in derived and " " not in derived


def test_a_stored_message_id_overrides_the_derived_one() -> None:
    msg = compose(mail(), CONFIG, message_id="<ack-0123abcd@old.example.com>")
    assert msg["Message-ID"] == "<ack-0123abcd@old.example.com>"


def test_threading_headers_survive_folding_unencoded() -> None:
    long_id = "<" + "x" * 90 + "@mail.example.org>"
    refs = [long_id, "<a@example.org>", "<" + "y" * 60 + "@example.org>"] * 3
    msg = on_the_wire(compose(mail(in_reply_to=long_id, references=refs), CONFIG))

    assert msg["In-Reply-To"] == long_id
    assert str(msg["References"]).split() == refs
    assert all(len(line) <= 998 for line in msg.as_string().splitlines())


def test_in_reply_to_alone_also_starts_the_references() -> None:
    msg = compose(mail(in_reply_to="<parent@example.org>"), CONFIG)
    assert msg["References"] == "<parent@example.org>"


@pytest.mark.parametrize(
    "fields",
    [
        {"subject": "Hi\r\nBcc: evil@example.net"},
        {"in_reply_to": "<a@b>\nBcc: evil@example.net"},
        {"references": ["<a@b>\r\nX-Evil: 1"]},
        {"to": [{"name": "Eve\r\nBcc: evil@example.net", "address": "eve@example.org"}]},
    ],
)
def test_header_injection_is_refused_by_the_model(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="header injection"):
        mail(**fields)


_UNPARSED_VALUES = [
    "Plain subject",
    "x" * 69,  # "Subject: " + 69 = 78: the last length that skips the parse
    "x" * 70,
    "word " * 20,
    "two  spaces",
    " leading",
    "trailing ",
    "tab\there",
    "=?utf-8?q?encoded?=",
    "Grüße",
    "<a.b@example.org>",
    "<not-closed@example.org",
    "<" + "a" * 70 + "@example.org>",
    "Mon, 23 Nov 2026 23:57:22 +0000",
    "",
]


@pytest.mark.parametrize("name", ["Subject", "Message-ID", "Date"])
@pytest.mark.parametrize("value", _UNPARSED_VALUES)
@pytest.mark.parametrize("utf8", [False, True])
def test_headers_built_without_a_parse_fold_as_the_stdlib_does(
    name: str, value: str, utf8: bool
) -> None:
    # Plain values skip the header parser: the output must stay byte for byte the stdlib's.
    ours = MAIL_POLICY.clone(utf8=utf8)
    stdlib = policy.SMTP.clone(utf8=utf8)
    built, reference = ours.header_factory(name, value), stdlib.header_factory(name, value)
    assert built.fold(policy=ours) == reference.fold(policy=stdlib)
    assert (str(built), len(built.defects)) == (str(reference), len(reference.defects))


def test_a_date_built_without_a_parse_keeps_its_datetime() -> None:
    sent = datetime(2026, 11, 23, 23, 57, 22, tzinfo=UTC)
    built, reference = (
        MAIL_POLICY.header_factory("Date", sent),
        policy.SMTP.header_factory("Date", sent),
    )
    assert built.fold(policy=MAIL_POLICY) == reference.fold(policy=policy.SMTP)
    assert built.datetime == reference.datetime == sent


def test_an_answer_with_cc_html_and_attachment_is_multipart() -> None:
    pdf = b"%PDF-1.4 manual"
    attachment = MailAttachment(
        filename="manual.pdf",
        content_type="application/pdf",
        size=len(pdf),
        file_id=hashlib.sha256(pdf).hexdigest(),
    )
    answer = mail(
        cc=[MailAddress(name="Boss", address="boss@example.org")],
        html="<p>Here is <b>the manual</b>.</p>",
        attachments=[attachment],
    )
    sent = on_the_wire(compose(answer, CONFIG, files=[pdf]))
    assert "boss@example.org" in str(sent["Cc"])
    parts = {part.get_content_type(): part for part in sent.walk()}
    assert "Here is" in parts["text/html"].get_content()
    assert parts["text/plain"].get_content().splitlines() == answer.text.splitlines()
    assert parts["application/pdf"].get_filename() == "manual.pdf"
    assert parts["application/pdf"].get_content() == pdf
    assert [m.address for m in answer.recipients] == ["joerg@example.org", "boss@example.org"]


def test_attachments_without_their_bytes_are_refused() -> None:
    attachment = MailAttachment(filename="a.txt", size=1, file_id="0" * 64)
    with pytest.raises(ValueError, match="attachments"):
        compose(mail(attachments=[attachment]), CONFIG)
