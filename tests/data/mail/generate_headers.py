"""Corpus cases for header fields (see ``generate.py``)."""

from __future__ import annotations

import base64
from typing import Any

from tests.data.mail.corpus import CRLF, Case, Expect, encoded_word, header_block, mail


def headers() -> list[Case]:
    """Encoded, raw, broken, long and missing header fields."""
    cases: list[Case] = []

    def simple(name: str, expect: Expect, **fields: Any) -> None:
        # fields: header_block's keyword arguments (subject, sender, to, extra, date)
        head = header_block(name, **fields)
        cases.append((name, mail(head, b"Body text." + CRLF), {"text": ["Body text."], **expect}))

    simple(
        "hdr-q-encoded", {"subject": "Drücker kaputt"}, subject=b"=?iso-8859-1?Q?Dr=FCcker_kaputt?="
    )
    simple(
        "hdr-b-encoded",
        {"subject": "Réunion demain"},
        subject=encoded_word("Réunion demain", "utf-8"),
    )
    simple(
        "hdr-mixed-charsets",
        {"subject": "Grüße und Привет"},
        subject=encoded_word("Grüße", "iso-8859-1", "Q")
        + b" und "
        + encoded_word("Привет", "koi8-r"),
    )
    split = "日本語の件名です".encode()
    words = b" ".join(
        b"=?utf-8?B?" + base64.b64encode(split[i : i + 5]) + b"?=" for i in range(0, len(split), 5)
    )
    simple("hdr-split-multibyte", {"subject": "日本語の件名です"}, subject=words)
    simple(
        "hdr-folded-words",
        {"subject": "A long subject that was folded by the client"},
        subject=b"=?utf-8?Q?A_long_subject_that?=\r\n =?utf-8?Q?_was_folded_by_the_client?=",
    )
    simple("hdr-raw-utf8", {"subject": "Grüße aus Zürich"}, subject="Grüße aus Zürich".encode())
    simple(
        "hdr-raw-latin1",
        {"subject": "Grüße aus Zürich"},
        subject="Grüße aus Zürich".encode("cp1252"),
    )
    simple(
        "hdr-bad-base64-word",
        {"subject": "Broken =?utf-8?B?!!!?= word", "defects": []},
        subject=b"Broken =?utf-8?B?!!!?= word",
    )
    simple(
        "hdr-unknown-word-charset", {"subject": "Grüße"}, subject=b"=?x-klingon?Q?Gr=C3=BC=C3=9Fe?="
    )
    simple(
        "hdr-encoded-display-with-comma",
        {"from": ["hans@example.org"], "from_names": ["Müller, Hans"], "subject": "Hi"},
        subject=b"Hi",
        sender=b"=?utf-8?Q?M=C3=BCller=2C_Hans?= <hans@example.org>",
    )
    simple(
        "hdr-quoted-display",
        {"from": ["hans@example.org"], "from_names": ["Müller, Hans"], "subject": "Hi"},
        subject=b"Hi",
        sender='"Müller, Hans" <hans@example.org>'.encode(),
    )
    simple(
        "hdr-many-recipients",
        {"to": [f"user{i}@example.com" for i in range(40)], "subject": "Team"},
        subject=b"Team",
        to=b",\r\n ".join(b"User %d <user%d@example.com>" % (i, i) for i in range(40)),
    )
    simple(
        "hdr-undisclosed",
        {"to": [], "subject": "Newsletter"},
        subject=b"Newsletter",
        to=b"undisclosed-recipients:;",
    )
    simple(
        "hdr-group-syntax",
        {"to": ["a@example.com", "b@example.com"], "subject": "Group"},
        subject=b"Group",
        to=b"Team: a@example.com, b@example.com;",
    )
    simple(
        "hdr-invalid-from",
        {"from": [], "subject": "Hi", "defects": ["From"]},
        subject=b"Hi",
        sender=b"not an address",
    )
    long_subject = " ".join(f"word{i}" for i in range(3000))
    simple(
        "hdr-very-long-subject",
        {"subject": long_subject},
        subject=long_subject.replace("0 ", "0\r\n ").encode(),
    )
    refs = [f"<ref{i}@example.org>" for i in range(60)]
    simple(
        "hdr-threading",
        {"subject": "Re: Case", "in_reply_to": "<ref59@example.org>", "references": refs},
        subject=b"Re: Case",
        extra=(
            b"In-Reply-To: <ref59@example.org> (Alice's message)",
            b"References: " + b"\r\n ".join(r.encode() for r in refs),
        ),
    )
    simple(
        "hdr-duplicate-subject",
        {"subject": "First"},
        subject=b"First\r\nSubject: Second",
    )
    simple(
        "hdr-no-tz-date",
        {"subject": "Date", "date": "2026-11-23T10:00:00+00:00", "defects": ["no time zone"]},
        subject=b"Date",
        date=b"23 Nov 2026 10:00:00",
    )
    simple(
        "hdr-invalid-date",
        {"subject": "Bad date", "date": None, "defects": ["Date"]},
        subject=b"Bad date",
        date=b"yesterday at noon",
    )
    for name, prefix in (("hdr-leading-bom", b"\xef\xbb\xbf"), ("hdr-leading-blank", b"\r\n")):
        head = header_block(name, subject=b"Export")
        expect: Expect = {"subject": "Export", "text": ["Body text."], "defects": ["removed"]}
        cases.append((name, prefix + mail(head, b"Body text." + CRLF), expect))
    cases.append(
        (
            "hdr-minimal",
            b"From: alice@example.org\r\n\r\nOnly a From header.\r\n",
            {"to": [], "message_id": None, "subject": "", "text": ["Only a From header."]},
        )
    )
    cases.append(
        (
            "hdr-no-blank-line",
            b"From: alice@example.org\r\nSubject: x\r\nthis line is body\r\n",
            {"to": [], "message_id": None, "subject": "x", "text": ["this line is body"]},
        )
    )
    cases.append(
        (
            "hdr-bare-lf",
            b"From: alice@example.org\nTo: support@example.com\nSubject: LF only\n"
            b"Message-ID: <hdr-bare-lf@example.org>\n\nLine one\nLine two\n",
            {"subject": "LF only", "text": ["Line one\nLine two"]},
        )
    )
    cases.append(
        (
            "hdr-bare-cr",
            b"From: alice@example.org\rTo: support@example.com\rSubject: CR only\r"
            b"Message-ID: <hdr-bare-cr@example.org>\r\rLine one\rLine two\r",
            {"subject": "CR only", "text": ["Line one", "Line two"]},
        )
    )
    huge = b"X-Junk: " + b"a" * 40000
    simple("hdr-huge-header", {"subject": "Huge"}, subject=b"Huge", extra=(huge,))
    simple(
        "hdr-huge-subject-cut",
        {"subject_prefix": "zzzz", "defects": ["cut to"]},
        subject=b"z" * 40000,
    )
    return cases


def cases() -> list[Case]:
    """Every case of this module."""
    return headers()
