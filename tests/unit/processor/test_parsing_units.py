"""The parser's building blocks where the corpus cannot show them one by one."""

from __future__ import annotations

import pytest

import services.processor.parsing as parsing
from services.processor.parsing import parse
from services.processor.parsing._decode import codec_for, decode_bytes, header_text
from services.processor.parsing._extract import signed_content


def test_public_names_are_sorted_and_complete() -> None:
    assert parsing.__all__ == sorted(parsing.__all__)
    assert set(parsing.__all__) == {"BounceInfo", "ParsedMail", "is_auto_reply", "parse"}


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("ISO-8859-1", "cp1252"),
        ('"utf-8"', "utf-8"),
        ("gb2312", "gb18030"),
        ("ks_c_5601-1987", "cp949"),
        ("windows-874", "cp874"),
        ("base64", None),
        ("unicode_escape", None),
        ("x-unknown", None),
        ("utf\x00-8", None),
        (None, None),
    ],
)
def test_charset_labels(label: str | None, codec: str | None) -> None:
    assert codec_for(label) == codec


def test_bytes_are_never_lost_silently() -> None:
    defects: list[str] = []
    text = decode_bytes(b"ok \xff\xfe\xfd end", "utf-8", "body plain", defects)
    assert text.startswith("ok ") and text.endswith(" end")
    assert defects and defects[0].startswith("body plain: not valid utf-8")


# Correctly labelled single-byte text, much of it short runs of symbols or capitals that read as
# "gibberish" to a mess ratio: none of it may be read in another charset.
_RIGHTLY_LABELLED = [
    ("Grüße aus Zürich", "cp1252"),
    ("ÄÖÜ äöü ß", "iso-8859-1"),
    ("€ 100 \u2013 \u201cquoted\u201d", "cp1252"),
    ("€ 100 \u2013 \u201cquoted\u201d", "cp1251"),
    ("© 2024 ®", "iso-8859-15"),
    ("µm ± 5°", "iso-8859-1"),
    ("Zażółć gęślą jaźń", "iso-8859-2"),
    ("Příliš žluťoučký kůň", "cp1250"),
    ("Çok teşekkürler", "cp1254"),
    ("Счёт на оплату №123", "cp1251"),
    ("Привет", "koi8-r"),
    ("Ελληνικά κείμενο", "iso-8859-7"),
    ("שלום עולם מה שלומך היום", "cp1255"),
]


@pytest.mark.parametrize(("text", "label"), _RIGHTLY_LABELLED)
def test_a_right_single_byte_label_is_kept(text: str, label: str) -> None:
    defects: list[str] = []
    assert decode_bytes(text.encode(label), label, "body", defects) == text
    assert defects == []


@pytest.mark.parametrize(
    ("written", "label"),
    [("cp1251", "koi8-r"), ("koi8-r", "cp1251"), ("cp1251", "iso-8859-1"), ("cp1253", "cp1252")],
)
def test_a_wrong_single_byte_label_is_read_by_detection(written: str, label: str) -> None:
    text = "Ελληνικά κείμενο" if written == "cp1253" else "Привет, как дела?"
    defects: list[str] = []
    assert decode_bytes(text.encode(written), label, "body", defects) == text
    assert defects == [f"body: declared {label} but reads as {written}"]


def test_encoded_words_split_inside_a_character_are_joined() -> None:
    # "ü" is C3 BC in UTF-8; a client split it across two words.
    assert header_text("=?utf-8?Q?Gr=C3?= =?utf-8?Q?=BC=C3=9Fe?=", "Subject", []) == "Grüße"


def _der(tag: int, body: bytes) -> bytes:
    return bytes([tag, len(body)]) + body


def test_signed_content_with_ber_indefinite_lengths_and_chunks() -> None:
    # Outlook and OpenSSL write BER: indefinite lengths and the content in OCTET STRING chunks.
    signed_oid = _der(0x06, bytes.fromhex("2a864886f70d010702"))
    data_oid = _der(0x06, bytes.fromhex("2a864886f70d010701"))
    chunks = b"\x24\x80" + _der(0x04, b"Hello, ") + _der(0x04, b"world") + b"\x00\x00"
    encap = b"\x30\x80" + data_oid + b"\xa0\x80" + chunks + b"\x00\x00" + b"\x00\x00"
    signed = b"\x30\x80" + _der(0x02, b"\x01") + _der(0x31, b"") + encap + b"\x00\x00"
    der = b"\x30\x80" + signed_oid + b"\xa0\x80" + signed + b"\x00\x00" + b"\x00\x00"
    assert signed_content(der) == b"Hello, world"


@pytest.mark.parametrize("der", [b"", b"\x30", b"\x30\x05\x06\x03", b"\x30\x80" * 50, b"junk"])
def test_signed_content_of_garbage_is_none(der: bytes) -> None:
    assert signed_content(der) is None


def test_bounce_is_classified_before_auto_reply() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.example.net\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        b"Auto-Submitted: auto-replied\r\nContent-Type: text/plain\r\n\r\n"
        b"<gone@example.net>: host mx said: 550 5.1.1 User unknown\r\n"
    )
    mail = parse(raw)
    assert mail.classification == "bounce"
    assert mail.bounce is not None
    assert (mail.bounce.recipient, mail.bounce.status) == ("gone@example.net", "5.1.1")


def test_hostile_address_header_is_a_defect_not_a_failure() -> None:
    raw = b"From: a@example.org\r\nTo: " + b"(" * 20000 + b"\r\nSubject: x\r\n\r\nbody\r\n"
    mail = parse(raw)
    assert mail.to == []
    assert any(d.startswith("To: comments nested too deep") for d in mail.defects)
