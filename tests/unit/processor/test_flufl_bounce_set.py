"""Real-world bounces (flufl.bounce's test data, see tests/data/flufl-bounce/README.md): each
is read as a bounce, with the recipient flufl.bounce's own tests expect and a delay as one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from services.processor.parsing import parse

SET = Path(__file__).parents[2] / "data" / "flufl-bounce"
EXPECTED: dict[str, dict[str, Any]] = json.loads((SET / "expected.json").read_text())


def test_every_mail_has_its_expectation() -> None:
    assert sorted(p.name for p in SET.glob("*.txt")) == sorted(EXPECTED)
    assert len(EXPECTED) >= 100


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bounce(name: str) -> None:
    expect = EXPECTED[name]
    mail = parse((SET / name).read_bytes())
    assert mail.classification == expect.get("classification", "bounce"), mail.defects
    if mail.bounce is None:
        return
    wanted = {a.lower() for a in expect["recipients"]}
    if wanted:
        assert (mail.bounce.recipient or "").lower() in wanted, mail.bounce
    assert (mail.bounce.action == "delayed") == expect["delayed"], mail.bounce
