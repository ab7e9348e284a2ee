"""Issue 15 scripts on in-memory lookups: complaints, second copies, the suppression list, and
what ``simulate`` reports of each decision."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest

from services.processor.parsing import parse
from services.processor.pipeline import run_scripts
from services.processor.scripts import ScriptContext
from services.processor.simulate import findings, simulate
from shared.errors import MailRejected
from shared.models.config import SystemConfig
from shared.store.mail_marks import FirstCopy
from tests.unit.processor.test_case_matching import FakeCases

SET = Path(__file__).parents[2] / "data" / "conformance"
MAIL = (
    b"From: Hana <hana@example.org>\r\nSubject: Help\r\nMessage-ID: <m-1@example.org>\r\n\r\nhi\r\n"
)


@dataclass
class FakeMarks:
    """In-memory suppression list and earlier copies."""

    listed: set[str] = field(default_factory=set)
    copies: dict[tuple[str, str], FirstCopy] = field(default_factory=dict)

    async def suppressed(self, addresses: list[str]) -> set[str]:
        return {a.lower() for a in addresses} & self.listed

    async def first_copy(
        self, message_id: str, digest: str, since: datetime, raw_id: str
    ) -> FirstCopy | None:
        return self.copies.get((message_id, digest))


def _ctx(cases: FakeCases | None = None, marks: FakeMarks | None = None) -> ScriptContext:
    return ScriptContext(
        config=SystemConfig(), cases=cases or FakeCases(), marks=marks or FakeMarks()
    )


async def test_a_tied_arf_report_attaches_and_suppresses_the_complainant() -> None:
    raw = (SET / "arf-verp-no-report-type.eml").read_bytes()
    cases = FakeCases(outbox={"out-7f3a9c": (7, "<case42.arf@mailroom.example.com>")})
    ctx = _ctx(cases)
    decision = await run_scripts(parse(raw), ctx)
    assert decision.action == "attach" and decision.case_number == 7
    assert "VERP" in decision.reason and "spam complaint" in decision.reason
    assert not ctx.acknowledge
    assert ctx.suppress == ["customer@isp.example.net"]
    assert ctx.complaint_on == "<case42.arf@mailroom.example.com>"


async def test_a_tied_ses_complaint_by_message_id() -> None:
    raw = (SET / "complaint-amazon-ses-json.eml").read_bytes()
    ctx = _ctx(FakeCases(by_message_id={"<case42.sesc@mailroom.example.com>": 3}))
    decision = await run_scripts(parse(raw), ctx)
    assert decision.action == "attach" and decision.case_number == 3


@pytest.mark.parametrize("name", ["arf-rfc5965-example", "complaint-amazon-ses-json"])
async def test_an_untied_complaint_is_refused_with_the_reason(name: str) -> None:
    with pytest.raises(MailRejected, match="complaints never open a case"):
        await run_scripts(parse((SET / f"{name}.eml").read_bytes()), _ctx())


async def test_a_second_copy_joins_the_first_case() -> None:
    mail = parse(MAIL)
    first = FirstCopy(case_number=5, raw_id="raw-a", account="support")
    ctx = _ctx(marks=FakeMarks(copies={(mail.message_id or "", mail.content_digest): first}))
    ctx.account = "sales"
    decision = await run_scripts(mail, ctx)
    assert decision.action == "attach" and decision.rule == "duplicate"
    assert decision.case_number == 5 and "support" in decision.reason
    assert "sales" in decision.reason and not ctx.acknowledge


def test_the_digest_ignores_trace_headers_but_not_content() -> None:
    trace = b"Received: from a by b; Mon, 23 Nov 2026\r\nDelivered-To: sales@example.com\r\n"
    assert parse(trace + MAIL).content_digest == parse(MAIL).content_digest
    assert parse(MAIL.replace(b"hi", b"ho")).content_digest != parse(MAIL).content_digest
    assert parse(MAIL.replace(b"\r\n", b"\n")).content_digest == parse(MAIL).content_digest


async def test_a_suppressed_address_gets_no_acknowledgement() -> None:
    ctx = _ctx(marks=FakeMarks(listed={"hana@example.org"}))
    decision = await run_scripts(parse(MAIL), ctx)
    assert decision.action == "new_case" and not ctx.acknowledge
    assert any("suppression list" in n for n in ctx.notes)


async def test_simulate_lists_each_decision_with_its_reason() -> None:
    raw = (SET / "from-missing-reply-to.eml").read_bytes()
    result = await simulate(raw, config=SystemConfig(), cases=FakeCases())
    assert {"kind": "sender_fallback", "reason": "no From: contact carol@example.org from "
            "reply-to"} in result["findings"]  # fmt: skip
    assert result["contact_source"] == "reply_to"
    repaired = parse((SET / "recover-broken-fold.eml").read_bytes())
    kinds = [f["kind"] for f in findings(repaired, _ctx())]
    assert kinds == ["header_repair"]
    arf = await simulate((SET / "arf-verp-no-report-type.eml").read_bytes(),
                         config=SystemConfig(),
                         cases=FakeCases(outbox={"out-7f3a9c": (7, "<x@y>")}))  # fmt: skip
    assert [f["kind"] for f in arf["findings"]] == ["complaint", "suppress"]
    assert arf["decision"]["action"] == "attach" and not arf["acknowledge"]
    mail = parse(MAIL)
    first = FirstCopy(case_number=5, raw_id="raw-a", account="support")
    marks = FakeMarks(copies={(mail.message_id or "", mail.content_digest): first})
    copy = await simulate(MAIL, config=SystemConfig(), cases=FakeCases(), marks=marks)
    assert copy["decision"]["duplicate_of"] == "raw-a"
    assert copy["findings"] == [
        {"kind": "duplicate", "reason": "duplicate of raw-a (case 5, account support)"}
    ]


async def test_simulate_names_what_marks_an_automatic_answer() -> None:
    raw = (SET / "ooo-x-mailer-vacation.eml").read_bytes()
    result = await simulate(raw, config=SystemConfig(), cases=FakeCases())
    marker = "X-Mailer: vacation 1.2.7 (Sendmail)"
    assert {"kind": "auto_reply", "reason": f"automatic answer ({marker}): never answered"} in (
        result["findings"]
    )
    assert f"automatic mail ({marker}): attached, not answered automatically" in result["notes"]
    assert not result["acknowledge"]


def test_simulate_lists_an_mbox_first_line_as_a_header_repair() -> None:
    mail = parse((SET / "recover-mbox-from.eml").read_bytes())
    assert [f["kind"] for f in findings(mail, _ctx())] == ["header_repair"]


async def test_a_not_spam_report_is_tied_but_suppresses_nobody() -> None:
    raw = (SET / "arf-not-spam.eml").read_bytes()
    ctx = _ctx(FakeCases(outbox={"out-7f3a9c": (7, "<case42.arf@mailroom.example.com>")}))
    decision = await run_scripts(parse(raw), ctx)
    assert decision.action == "attach" and decision.case_number == 7
    assert "not-spam" in decision.reason and "no more automatic mail" not in decision.reason
    assert ctx.complaint_on == "<case42.arf@mailroom.example.com>"
    assert ctx.suppress == [] and not ctx.acknowledge


async def test_a_complaint_never_opens_a_case_even_without_its_script() -> None:
    config = SystemConfig()
    scripts = tuple(
        s.model_copy(update={"enabled": s.name != "complaint_handler"})
        for s in config.processor.incoming_scripts
    )
    processor = config.processor.model_copy(update={"incoming_scripts": scripts})
    ctx = ScriptContext(
        config=config.model_copy(update={"processor": processor}), cases=FakeCases()
    )
    with pytest.raises(MailRejected, match="complaints never open a case"):
        await run_scripts(parse((SET / "arf-rfc5965-example.eml").read_bytes()), ctx)
