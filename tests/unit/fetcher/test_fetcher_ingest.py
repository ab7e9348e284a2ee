"""The fetch round's pure helpers: the Message-ID from the header block."""

from __future__ import annotations

import pytest

from services.fetcher.ingest import message_id_of


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"From: a@b\r\nMessage-ID: <abc@example.org>\r\n\r\nbody", "<abc@example.org>"),
        (b"message-id:<x@y>\nSubject: lf only\n\nbody", "<x@y>"),
        (b"MESSAGE-ID: \r\n <folded@example.org>\r\n\r\n", "<folded@example.org>"),
        (b"Message-Id: (comment) <c@d> (more)\r\n\r\n", "<c@d>"),
        (b"Message-ID: no-angle-brackets@host\r\n\r\n", "no-angle-brackets@host"),
        (b"Message-ID: <caf\xc3\xa9@h>\r\n\r\n", "<caf\u00e9@h>"),
        (b"Message-ID: <\xff@h>\r\n\r\n", "<\ufffd@h>"),
        (b"Message-ID:\r\n\r\n", None),
        (b"Subject: no id\r\n\r\nMessage-ID: <in-the-body@x>\r\n", None),
        (b"X-Original-Message-ID: <not-this@x>\r\n\r\n", None),
        (b"Resent-Message-ID: <nor-this@x>\r\nMessage-ID: <this@x>\r\n\r\n", "<this@x>"),
        (b"", None),
    ],
)
def test_message_id_from_the_header_block(raw: bytes, expected: str | None) -> None:
    assert message_id_of(raw) == expected
