"""What a script may ask of its context: mails to send, each under a key of its own."""

from __future__ import annotations

import pytest

from services.processor.parsing import parse
from services.processor.scripts import ScriptContext
from shared.models.config import SystemConfig
from shared.models.messages import MailAddress
from tests.unit.processor.test_case_matching import FakeCases

TO = [MailAddress(address="c@example.org")]


def test_mails_are_kept_with_the_script_and_key_until_the_mail_is_processed() -> None:
    ctx = ScriptContext(config=SystemConfig(), cases=FakeCases())
    ctx.script = "greeter"
    ctx.send_mail("hello", to=TO, subject="Hi", text="Hello")
    ctx.script = "other"
    ctx.send_mail("hello", to=TO, subject="Hi", text="Hello", kind="notification")
    assert [(m.script, m.key, m.kind, m.automatic) for m in ctx.outgoing] == [
        ("greeter", "hello", "reply", True),
        ("other", "hello", "notification", True),
    ]


@pytest.mark.parametrize("key", ["", "a b", "x" * 65, "ü", "a/b"])
def test_a_key_that_cannot_be_part_of_a_mail_id_is_refused(key: str) -> None:
    ctx = ScriptContext(config=SystemConfig(), cases=FakeCases())
    with pytest.raises(ValueError, match="mail key"):
        ctx.send_mail(key, to=TO, subject="Hi", text="Hello")


def test_one_script_cannot_send_two_mails_under_one_key() -> None:
    ctx = ScriptContext(config=SystemConfig(), cases=FakeCases(), script="greeter")
    ctx.send_mail("hello", to=TO, subject="Hi", text="Hello")
    with pytest.raises(ValueError, match="already sends"):
        ctx.send_mail("hello", to=TO, subject="Again", text="Hello")


def test_the_mails_own_addresses_are_taken_and_those_without_mail_left_out() -> None:
    mail = parse(b"From: MAILER-DAEMON\r\nCc: Dan <dan@example.org>\r\nSubject: x\r\n\r\nbody\r\n")
    ctx = ScriptContext(config=SystemConfig(), cases=FakeCases(), script="greeter")
    ctx.send_mail("hello", to=[*mail.from_, *mail.cc], subject="Hi", text="Hello")
    assert [(str(a.address), a.name) for a in ctx.outgoing[0].to] == [("dan@example.org", "Dan")]
    ctx.send_mail("again", to=mail.from_, subject="Hi", text="Hello")
    assert len(ctx.outgoing) == 1  # nobody left to send it to
    assert ctx.notes == ["greeter: no mail to MAILER-DAEMON (no mail can be sent there)"] * 2
