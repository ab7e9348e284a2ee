"""Property-based: whatever bytes arrive, parse() returns a ParsedMail or raises Permanent."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.processor.parsing import ParsedMail, parse
from shared.errors import Permanent

CORPUS = sorted((Path(__file__).parents[2] / "data" / "mail").glob("*.eml"))
# Small mails only: mutating the 1100-part mail would make each example slow, not more useful.
SEEDS = [p.read_bytes() for p in CORPUS if p.stat().st_size < 20_000]
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _parse_or_permanent(data: bytes) -> None:
    try:
        mail = parse(data)
    except Permanent as exc:
        assert str(exc).startswith("unparseable mail")
        return
    assert isinstance(mail, ParsedMail)
    mail.model_dump_json(by_alias=True)  # what the store and `simulate --json` do with it


@SETTINGS
@given(st.binary(max_size=4096))
def test_random_bytes(data: bytes) -> None:
    _parse_or_permanent(data)


@SETTINGS
@given(st.sampled_from(SEEDS), st.data())
def test_truncated_mail(seed: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(min_value=0, max_value=len(seed)))
    _parse_or_permanent(seed[:cut])


@SETTINGS
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=20),
)
def test_flipped_bytes(seed: bytes, flips: list[tuple[int, int]]) -> None:
    data = bytearray(seed)
    for position, value in flips:
        data[position % len(data)] = value
    _parse_or_permanent(bytes(data))


@SETTINGS
@given(st.sampled_from(SEEDS), st.sampled_from([b"--", b"boundary=", b"\r\n\r\n", b"=?", b"?="]))
def test_damaged_structure(seed: bytes, marker: bytes) -> None:
    # Remove, double or cut at the markers MIME structure hangs on.
    _parse_or_permanent(seed.replace(marker, b"", 3))
    _parse_or_permanent(seed.replace(marker, marker * 2))
    _parse_or_permanent(seed.replace(marker, marker + b"\x00\xff", 5))


@SETTINGS
@given(st.sampled_from(SEEDS), st.integers(min_value=1, max_value=50), st.data())
def test_duplicated_headers(seed: bytes, times: int, data: st.DataObject) -> None:
    head, _, body = seed.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    line = data.draw(st.sampled_from(lines))
    _parse_or_permanent(b"\r\n".join([*lines, *[line] * times]) + b"\r\n\r\n" + body)


@SETTINGS
@given(st.text(max_size=300), st.sampled_from(["Subject", "From", "To", "Content-Type", "Date"]))
def test_random_header_values(value: str, name: str) -> None:
    raw = f"From: a@example.org\r\n{name}: {value}\r\n\r\nbody\r\n"
    _parse_or_permanent(raw.encode("utf-8", errors="surrogatepass"))


@pytest.mark.parametrize("depth", [100, 3000])
def test_deep_nesting_is_bounded(depth: int) -> None:
    head = b"From: a@example.org\r\nSubject: deep\r\nContent-Type: multipart/mixed; boundary=b0\r\n"
    body = b"".join(
        b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i, i + 1)
        for i in range(depth)
    )
    mail = parse(head + b"\r\n" + body + b"--b%d\r\n\r\ninnermost\r\n" % depth)
    assert any("nested" in d for d in mail.defects)


def test_big_attachment_size_is_the_decoded_size() -> None:
    payload = bytes(range(256)) * 40_000  # 10 MiB
    raw = (
        b"From: a@example.org\r\nSubject: big\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n"
        b"--B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: attachment; filename=big.bin\r\n\r\n"
        + base64.encodebytes(payload).replace(b"\n", b"\r\n")
        + b"--B--\r\n"
    )
    mail = parse(raw)
    assert [(a.filename, a.size) for a in mail.attachments] == [("big.bin", len(payload))]
    assert mail.text == "see attachment"


def test_many_headers_and_long_lines() -> None:
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 500) for i in range(5000))
    raw = b"From: a@example.org\r\nSubject: many\r\n" + headers + b"\r\n" + b"x" * 1_000_000
    mail = parse(raw)
    assert mail.subject == "many"
    assert mail.text is not None and len(mail.text) == 1_000_000
