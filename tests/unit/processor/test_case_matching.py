"""Case matching: subject pattern → references → new case, each with its reason."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from services.processor.parsing import parse
from services.processor.pipeline import run_scripts
from services.processor.scripts import Decision, ScriptContext
from shared.errors import MailRejected
from shared.models.config import ProcessorSettings, ScriptSetting, SystemConfig


@dataclass
class FakeCases:
    """In-memory case lookups (pure logic only)."""

    numbers: set[int] = field(default_factory=set)
    by_message_id: dict[str, int] = field(default_factory=dict)

    async def case_exists(self, number: int) -> bool:
        return number in self.numbers

    async def case_of_message_ids(self, message_ids: list[str]) -> int | None:
        return next((self.by_message_id[i] for i in message_ids if i in self.by_message_id), None)


def mail(subject: str, extra: str = "") -> bytes:
    return f"From: c@example.org\r\nSubject: {subject}\r\n{extra}\r\nbody\r\n".encode()


async def decide(
    raw: bytes, cases: FakeCases, config: SystemConfig | None = None
) -> tuple[Decision, ScriptContext]:
    ctx = ScriptContext(config=config or SystemConfig(), cases=cases)
    return await run_scripts(parse(raw), ctx), ctx


@pytest.mark.parametrize("prefix", ["", "Re: ", "AW: WG: ", "RE[2]: ", "Fwd: SV: "])
async def test_subject_pattern_attaches_to_existing_case(prefix: str) -> None:
    decision, _ = await decide(mail(f"{prefix}Printer [Case#10001]"), FakeCases({10001}))
    assert (decision.action, decision.rule, decision.case_number) == (
        "attach",
        "subject_pattern",
        10001,
    )
    assert "10001" in decision.reason


async def test_subject_naming_unknown_case_falls_through_to_new_case_with_note() -> None:
    decision, ctx = await decide(mail("Printer [Case#99999]"), FakeCases({10001}))
    assert (decision.action, decision.rule) == ("new_case", "new")
    assert any("99999" in n for n in ctx.notes)


async def test_in_reply_to_attaches() -> None:
    cases = FakeCases({10001}, {"<ack@example.com>": 10001})
    decision, _ = await decide(mail("Thanks", "In-Reply-To: <ack@example.com>\r\n"), cases)
    assert (decision.action, decision.rule, decision.case_number) == ("attach", "references", 10001)


async def test_references_attach_when_in_reply_to_is_unknown() -> None:
    cases = FakeCases({10002}, {"<old@example.com>": 10002})
    raw = mail("x", "In-Reply-To: <unknown@x>\r\nReferences: <old@example.com> <unknown@x>\r\n")
    decision, _ = await decide(raw, cases)
    assert decision.case_number == 10002


async def test_subject_pattern_wins_over_references() -> None:
    cases = FakeCases({10001, 10002}, {"<ack@example.com>": 10002})
    raw = mail("Re: [Case#10001]", "In-Reply-To: <ack@example.com>\r\n")
    decision, _ = await decide(raw, cases)
    assert (decision.rule, decision.case_number) == ("subject_pattern", 10001)


async def test_unknown_mail_opens_a_new_case() -> None:
    decision, _ = await decide(mail("Hello"), FakeCases())
    assert (decision.action, decision.rule, decision.case_number) == ("new_case", "new", None)


def reject_config(enabled: bool) -> SystemConfig:
    return SystemConfig(
        processor=ProcessorSettings(
            incoming_scripts=(
                ScriptSetting(name="reject_subject", enabled=enabled),
                ScriptSetting(name="case_matcher"),
            ),
            reject_subject_pattern=r"(?i)quarantine",
        )
    )


async def test_enabled_reject_script_refuses_with_reason() -> None:
    with pytest.raises(MailRejected, match="reject pattern") as err:
        await decide(mail("QUARANTINE me"), FakeCases(), reject_config(True))
    assert err.value.script == "reject_subject"


async def test_disabled_reject_script_lets_the_mail_through() -> None:
    decision, _ = await decide(mail("QUARANTINE me"), FakeCases(), reject_config(False))
    assert decision.action == "new_case"


async def test_without_the_matcher_every_mail_opens_a_case() -> None:
    config = SystemConfig(processor=ProcessorSettings(incoming_scripts=()))
    decision, _ = await decide(mail("Re: [Case#10001]"), FakeCases({10001}), config)
    assert decision.action == "new_case"
