"""Case matching: subject pattern → references → new case, each with its reason."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from services.processor.parsing import BounceInfo, parse
from services.processor.pipeline import run_scripts
from services.processor.scripts import Decision, ScriptContext
from shared.conversation import ConversationSettings
from shared.errors import MailRejected
from shared.models.config import ProcessorSettings, ScriptSetting, SystemConfig


@dataclass
class FakeCases:
    """In-memory case lookups (pure logic only)."""

    numbers: set[int] = field(default_factory=set)
    by_message_id: dict[str, int] = field(default_factory=dict)

    async def case_exists(self, number: int) -> bool:
        return number in self.numbers

    by_conversation: dict[str, int] = field(default_factory=dict)
    members: dict[int, set[str]] = field(default_factory=dict)
    answers: dict[str, int] = field(default_factory=dict)
    outbox: dict[str, tuple[int, str]] = field(default_factory=dict)
    counted: list[str] = field(default_factory=list)
    """Addresses whose automatic answers were looked up."""

    async def case_of_message_ids(self, message_ids: list[str]) -> int | None:
        return next((self.by_message_id[i] for i in message_ids if i in self.by_message_id), None)

    async def case_of_conversation(self, conversation: str) -> int | None:
        return self.by_conversation.get(conversation)

    async def participants(self, number: int) -> set[str]:
        return self.members.get(number, set())

    async def automatic_answers_this_hour(self, address: str) -> int:
        self.counted.append(address)
        return self.answers.get(address, 0)

    async def outgoing_of(self, outbox_ids: list[str]) -> tuple[int, str | None] | None:
        return next((self.outbox[i] for i in outbox_ids if i in self.outbox), None)


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


def conversation_config(**processor: object) -> SystemConfig:
    return SystemConfig(
        conversation=ConversationSettings(enabled=True),
        processor=ProcessorSettings(**processor),
    )


@pytest.mark.parametrize("where", ["subject", "body"])
async def test_conversation_id_wins_over_a_stale_subject(where: str) -> None:
    token = "{CMI: 00000042}"
    subject = f"Re: old [Case#10001] {token}" if where == "subject" else "Re: old [Case#10001]"
    body = f"quoted text\r\n{token}" if where == "body" else "hi"
    raw = f"From: c@example.org\r\nSubject: {subject}\r\n\r\n{body}\r\n".encode()
    cases = FakeCases({10001, 10002}, by_conversation={"00000042": 10002})
    decision, _ = await decide(raw, cases, conversation_config())
    assert (decision.rule, decision.case_number) == ("conversation_id", 10002)
    assert where in decision.reason


async def test_conversation_ids_of_another_system_are_ignored() -> None:
    raw = mail("Re: {OTHER: 00000042} [Case#10001]")
    cases = FakeCases({10001}, by_conversation={"00000042": 10002})
    decision, _ = await decide(raw, cases, conversation_config())
    assert (decision.rule, decision.case_number) == ("subject_pattern", 10001)


async def test_non_participant_subject_match_opens_a_new_case_when_configured() -> None:
    cases = FakeCases({10001}, members={10001: {"owner@example.org"}})
    stranger = mail("Re: [Case#10001] I quote your number")
    decision, _ = await decide(
        stranger, cases, conversation_config(non_participant_opens_new_case=True)
    )
    assert decision.action == "new_case" and "not a participant" in decision.reason
    decision, _ = await decide(stranger, cases, conversation_config())
    assert decision.action == "attach"
    member = b"From: owner@example.org\r\nSubject: Re: [Case#10001]\r\n\r\nx\r\n"
    decision, _ = await decide(
        member, cases, conversation_config(non_participant_opens_new_case=True)
    )
    assert (decision.action, decision.case_number) == ("attach", 10001)


async def test_participant_check_uses_the_contact_when_from_is_missing() -> None:
    cases = FakeCases({10001}, members={10001: {"owner@example.org"}})
    config = conversation_config(non_participant_opens_new_case=True)
    member = b"Sender: owner@example.org\r\nSubject: Re: [Case#10001]\r\n\r\nx\r\n"
    decision, _ = await decide(member, cases, config)
    assert (decision.action, decision.case_number) == ("attach", 10001)
    stranger = b"Reply-To: other@example.org\r\nSubject: Re: [Case#10001]\r\n\r\nx\r\n"
    decision, _ = await decide(stranger, cases, config)
    assert decision.action == "new_case" and "other@example.org" in decision.reason


BOUNCE_HEADERS = "Auto-Submitted: auto-replied\r\n"


async def test_bounce_joins_the_case_of_our_mail_and_is_not_answered() -> None:
    cases = FakeCases({10001}, {"<ack-1@example.com>": 10001})
    parsed = parse(mail("Undelivered Mail Returned to Sender", BOUNCE_HEADERS)).model_copy(
        update={
            "classification": "bounce",
            "bounce": BounceInfo(
                recipient="x@example.org", status="5.1.1", original_message_id="<ack-1@example.com>"
            ),
        }
    )
    ctx = ScriptContext(config=SystemConfig(), cases=cases)
    decision = await run_scripts(parsed, ctx)
    assert (decision.action, decision.case_number) == ("attach", 10001)
    assert "5.1.1" in decision.reason and not ctx.acknowledge
    assert ctx.bounced_message_id == "<ack-1@example.com>"


async def test_bounce_for_an_unknown_mail_is_dropped_never_a_new_case() -> None:
    parsed = parse(mail("failure notice")).model_copy(
        update={"classification": "bounce", "bounce": BounceInfo(status="5.0.0")}
    )
    ctx = ScriptContext(config=SystemConfig(), cases=FakeCases())
    decision = await run_scripts(parsed, ctx)
    assert decision.action == "drop" and "never open a case" in decision.reason


VERP_DSN = (
    b"From: MAILER-DAEMON@mx.example.org\r\n"
    b"To: bounces+ack-42@example.com\r\n"
    b"Delivered-To: support+billing@example.com\r\n"
    b"Subject: Undelivered Mail Returned to Sender\r\n"
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n"
    b"--B\r\nContent-Type: text/plain\r\n\r\nSorry.\r\n"
    b"--B\r\nContent-Type: message/delivery-status\r\n\r\n"
    b"Reporting-MTA: dns; mx.example.org\r\n\r\n"
    b"Final-Recipient: rfc822; gone@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n"
    b"\r\n--B--\r\n"
)


async def test_bounce_is_placed_by_its_verp_address_without_a_message_id() -> None:
    parsed = parse(VERP_DSN)
    assert parsed.bounce is not None and parsed.bounce.original_message_id is None
    assert parsed.bounce.verp_tokens == ["billing", "ack-42"]
    cases = FakeCases({10007}, outbox={"ack-42": (10007, "<ack-42@example.com>")})
    ctx = ScriptContext(config=SystemConfig(), cases=cases)
    decision = await run_scripts(parsed, ctx)
    assert (decision.action, decision.case_number) == ("attach", 10007)
    assert "VERP" in decision.reason and ctx.bounced_message_id == "<ack-42@example.com>"


async def test_a_plus_address_that_is_no_outbox_id_is_not_taken_for_verp() -> None:
    ctx = ScriptContext(config=SystemConfig(), cases=FakeCases())
    decision = await run_scripts(parse(VERP_DSN), ctx)
    assert decision.action == "drop" and ctx.bounced_message_id is None


async def test_auto_reply_is_attached_but_not_answered() -> None:
    decision, ctx = await decide(
        mail("Out of office", "Auto-Submitted: auto-replied\r\n"), FakeCases()
    )
    assert decision.action == "new_case" and not ctx.acknowledge


async def test_rate_limit_stops_automatic_answers_per_sender() -> None:
    _, ctx = await decide(mail("Hi"), FakeCases(answers={"c@example.org": 4}))
    assert ctx.acknowledge
    _, ctx = await decide(mail("Hi"), FakeCases(answers={"c@example.org": 5}))
    assert not ctx.acknowledge and any("limit 5" in n for n in ctx.notes)


async def test_a_follow_up_skips_the_acknowledgement_guards() -> None:
    # A follow-up is never acknowledged: the rate limit is not looked up, and its note
    # (which a new case from the same sender gets) is not written on the follow-up.
    cases = FakeCases({10001}, answers={"c@example.org": 9})
    decision, ctx = await decide(mail("Re: Printer [Case#10001]"), cases)
    assert decision.action == "attach" and cases.counted == []
    assert not any("limit" in n for n in ctx.notes)
    decision, ctx = await decide(mail("Printer"), cases)
    assert decision.action == "new_case" and cases.counted == ["c@example.org"]
    assert not ctx.acknowledge and any("limit 5" in n for n in ctx.notes)


async def test_oversized_mail_is_attached_without_attachments() -> None:
    config = conversation_config(max_mail_size_bytes=10_000)
    big = mail("Huge", "") + b"x" * 20_000
    decision, ctx = await decide(big, FakeCases(), config)
    assert decision.action == "new_case" and ctx.omit_attachments
    assert any("over the limit" in n for n in ctx.notes)
