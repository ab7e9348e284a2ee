"""Every mail of tests/data/mail parses to the outcome written next to it in manifest.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from services.processor.parsing import ParsedMail, parse
from tests.data.mail.generate import build

CORPUS = Path(__file__).parents[2] / "data" / "mail"
MANIFEST: dict[str, dict[str, Any]] = json.loads(
    (CORPUS / "manifest.json").read_text(encoding="utf-8")
)


def test_the_corpus_is_complete() -> None:
    assert len(MANIFEST) >= 150
    assert sorted(p.name for p in CORPUS.glob("*.eml")) == sorted(MANIFEST)


def test_the_committed_corpus_is_what_the_generator_writes() -> None:
    # Edit the generator, not the files: `python -m tests.data.mail.generate` rewrites them.
    for filename, (raw, expect) in build().items():
        assert (CORPUS / filename).read_bytes() == raw, filename
        assert json.loads(json.dumps(expect)) == MANIFEST[filename], filename


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_corpus_mail(name: str) -> None:
    expect = MANIFEST[name]
    mail = parse((CORPUS / name).read_bytes())
    _check_headers(mail, expect)
    _check_bodies(mail, expect)
    _check_attachments(mail, expect)
    assert mail.classification == expect["classification"], mail.defects
    if expect["bounce"] is None:
        assert mail.bounce is None
    else:
        assert mail.bounce is not None
        assert mail.bounce.model_dump(include=set(expect["bounce"])) == expect["bounce"]
    for defect in expect.get("defects", []):
        assert any(defect in found for found in mail.defects), (defect, mail.defects)


def _addresses(found: list[Any]) -> list[str]:
    return [str(a.address) for a in found]


def _check_headers(mail: ParsedMail, expect: dict[str, Any]) -> None:
    if "subject" in expect:
        assert mail.subject == expect["subject"]
    if "subject_prefix" in expect:
        assert mail.subject.startswith(expect["subject_prefix"])
    assert mail.message_id == expect["message_id"]
    assert _addresses(mail.from_) == expect["from"]
    assert _addresses(mail.to) == expect["to"]
    for field in ("cc", "reply_to"):
        if field in expect:
            assert _addresses(getattr(mail, field)) == expect[field]
    if "from_names" in expect:
        assert [a.name for a in mail.from_] == expect["from_names"]
    for field in ("in_reply_to", "references"):
        if field in expect:
            assert getattr(mail, field) == expect[field]
    if "date" in expect:
        found = None if mail.date is None else mail.date.isoformat()
        assert found == expect["date"]


def _check_bodies(mail: ParsedMail, expect: dict[str, Any]) -> None:
    for snippet in expect.get("text", []):
        assert mail.text is not None and snippet in mail.text, (snippet, mail.text)
    for snippet in expect.get("no_text", []):
        assert snippet not in (mail.text or "")
    for snippet in expect.get("html", []):
        assert mail.html is not None and snippet in mail.html


def _check_attachments(mail: ParsedMail, expect: dict[str, Any]) -> None:
    if "attachment_count" in expect:
        assert len(mail.attachments) == expect["attachment_count"]
        return
    found = [[a.filename, a.content_type, a.size] for a in mail.attachments]
    wanted = expect["attachments"]
    assert len(found) == len(wanted), found
    for got, want in zip(found, wanted, strict=True):
        assert got[:2] == want[:2], found
        if want[2] is not None:
            assert got[2] == want[2], (got, want)
    if "content_ids" in expect:
        assert [a.content_id for a in mail.attachments] == expect["content_ids"]
