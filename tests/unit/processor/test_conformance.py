"""The conformance set: every tests/data/conformance/NAME.eml parses as NAME.json says.

Each side file lists only what that mail is about (see tests/data/conformance/README.md for
the keys); where third-party samples came from is recorded in SOURCES.md beside them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from services.processor.parsing import ParsedMail, parse

SET = Path(__file__).parents[2] / "data" / "conformance"
CASES = sorted(p.stem for p in SET.glob("*.eml"))
_ATTRIBUTES = ("from_", "to", "cc", "reply_to", "sender", "return_path")


def test_every_mail_has_its_expectation() -> None:
    assert len(CASES) >= 40
    assert sorted(p.stem for p in SET.glob("*.json")) == CASES


@pytest.mark.parametrize("name", CASES)
def test_conformance(name: str) -> None:
    expect: dict[str, Any] = json.loads((SET / f"{name}.json").read_text(encoding="utf-8"))
    mail = parse((SET / f"{name}.eml").read_bytes())
    found = _view(mail)
    for key, wanted in expect.items():
        if key == "defects":
            for text in wanted:
                assert any(text in d for d in mail.defects), (text, mail.defects)
        elif key in ("bounce", "complaint"):
            got = found[key]
            assert got is not None, (key, mail.classification, mail.defects)
            assert {k: got[k] for k in wanted} == wanted
        elif key == "replyable":
            listed = {a.address: a.replyable for f in _ATTRIBUTES for a in getattr(mail, f)}
            assert {k: listed.get(k) for k in wanted} == wanted
        elif key == "text":
            for snippet in wanted:
                assert snippet in (mail.text or ""), (snippet, mail.text)
        elif key in ("same_digest_as", "other_digest_than"):
            other = parse((SET / f"{wanted}.eml").read_bytes()).content_digest
            assert (mail.content_digest == other) == (key == "same_digest_as")
        elif key == "headers":
            names = {n.lower() for n, _ in mail.headers}
            assert {n.lower() for n in wanted} <= names, names
        else:
            assert found[key] == wanted, (key, mail.defects)


def _view(mail: ParsedMail) -> dict[str, Any]:
    """The parse in the side files' terms."""
    fields = {f: [a.address for a in getattr(mail, f)] for f in _ATTRIBUTES[1:]}
    answer = mail.answer_to
    return {
        **fields,
        "from": [a.address for a in mail.from_],
        "from_names": [a.name for a in mail.from_],
        "subject": mail.subject,
        "message_id": mail.message_id,
        "contact_source": mail.contact_source,
        "answer_to": None if answer is None else str(answer.address),
        "attachments": [a.filename for a in mail.attachments],
        "classification": mail.classification,
        "bounce": mail.bounce.model_dump() if mail.bounce else None,
        "complaint": mail.complaint.model_dump() if mail.complaint else None,
        "auto_reply": mail.classification == "auto_reply",
        "auto_reply_marker": mail.auto_reply_marker,
    }
