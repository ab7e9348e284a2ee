"""Issue 15 on real MongoDB and RabbitMQ: second copies, spam complaints, the suppression list,
addresses that get no mail."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.config.suppressions import SuppressionAdd, add_suppression, remove_suppression
from services.processor.parsing import parse
from services.processor.process import Outcome, process_mail
from shared.errors import MailRejected, Transient
from shared.models.config import ScriptSetting
from shared.models.records import CaseMessage
from shared.runtime import Runtime
from tests.e2e.conftest import DEFAULT_SCRIPTS, install_script
from tests.integration.processor.helpers import outgoing, store_raw

MAIL = (
    b"From: Hana <hana@example.org>\r\nTo: support@example.com, sales@example.com\r\n"
    b"Subject: Printer on fire\r\nMessage-ID: <fire-1@example.org>\r\n"
    b"Date: Mon, 23 Nov 2026 10:00:00 +0100\r\n\r\nIt smokes.\r\n"
)


def _arf(original: str, complainant: str) -> bytes:
    return (
        "From: fbl@isp.example.net\r\nTo: abuse@example.com\r\nSubject: Complaint\r\n"
        "Message-ID: <arf-1@isp.example.net>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nSpam report.\r\n"
        "--b\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n"
        f"User-Agent: ISP/1\r\nVersion: 1\r\nOriginal-Rcpt-To: <{complainant}>\r\n\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: support@example.com\r\n"
        f"To: {complainant}\r\nMessage-ID: {original}\r\n\r\n--b--\r\n"
    ).encode()


async def test_a_second_copy_from_another_account_joins_the_first_case(rt: Runtime) -> None:
    first = await process_mail(rt, await store_raw(rt, MAIL, "1:1", account="support"))
    copy = b"Received: from relay.example.net by mx.example.com; Mon, 23 Nov 2026\r\n" + MAIL
    second = await process_mail(rt, await store_raw(rt, copy, "1:1", account="sales"))
    assert first.decision.action == "new_case"
    assert second.decision.action == "attach" and second.decision.rule == "duplicate"
    assert second.case_number == first.case_number
    assert len(await rt.store.cases.recent()) == 1
    assert len(await outgoing(rt)) == 1  # one acknowledgement, for the first copy
    docs = [d async for d in rt.store.db["messages"].find({"case_number": first.case_number})]
    assert sorted(d["account"] for d in docs) == ["sales", "support"]
    assert [d.get("duplicate_of") is not None for d in docs].count(True) == 1


async def test_two_copies_processed_at_the_same_moment_open_one_case(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both copies pass the scripts before either case exists (the same mail fetched from
    # support@ and sales@ in one round): each would open a case unless one of them waits.
    create, arrived, both = rt.store.cases.create_for_raw, [], asyncio.Event()

    async def together(**fields: Any) -> Any:
        arrived.append(fields["raw_id"])
        if len(arrived) == 2:
            both.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await both.wait()
        return await create(**fields)

    monkeypatch.setattr(rt.store.cases, "create_for_raw", together)
    copy = b"Received: from relay.example.net by mx.example.com; Mon, 23 Nov 2026\r\n" + MAIL
    copies = [
        await store_raw(rt, MAIL, "1:1", account="support"),
        await store_raw(rt, copy, "1:1", account="sales"),
    ]
    results = await asyncio.gather(*(process_mail(rt, m) for m in copies), return_exceptions=True)

    opened = [r for r in results if isinstance(r, Outcome)]
    waiting = [m for m, r in zip(copies, results, strict=True) if isinstance(r, Transient)]
    assert len(opened) == 1 and len(waiting) == 1, results
    assert "another copy of this mail" in str(next(r for r in results if isinstance(r, Transient)))
    retried = await process_mail(rt, waiting[0])  # the processor's retry
    assert retried.decision.rule == "duplicate"
    assert retried.case_number == opened[0].case_number
    assert len(await rt.store.cases.recent()) == 1
    assert len(await outgoing(rt)) == 1


async def test_a_copy_whose_first_copy_failed_opens_the_case(rt: Runtime) -> None:
    first = await store_raw(rt, MAIL, "1:1", account="support")
    holder = await rt.store.mail_marks.claim_first_copy(
        message_id="<fire-1@example.org>",
        digest=parse(MAIL).content_digest,
        raw_id=first.raw_id,
        since=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert holder == first.raw_id
    await rt.store.raw_emails.record_failure(raw_id=first.raw_id, error="on the desk")
    copy = b"Received: from relay.example.net by mx.example.com; Mon, 23 Nov 2026\r\n" + MAIL
    second = await process_mail(rt, await store_raw(rt, copy, "1:1", account="sales"))
    assert second.decision.action == "new_case"  # never waits for a mail on the desk


async def test_a_complaint_is_tied_recorded_and_suppresses_automatic_mail(rt: Runtime) -> None:
    case, _ = await rt.store.cases.create_for_raw(raw_id="r-0", subject="Case", contact=None)
    ours = CaseMessage.model_validate(
        {"case_number": case.number, "direction": "out", "message_id": "<out-1@example.com>",
         "subject": "Your case", "to": [{"address": "ivan@example.org"}]}
    )  # fmt: skip
    await rt.store.cases.add_message(message=ours)
    msg = await store_raw(rt, _arf("<out-1@example.com>", "ivan@example.org"), "2:1")
    outcome = await process_mail(rt, msg)
    assert outcome.decision.action == "attach" and outcome.case_number == case.number
    assert "spam complaint" in outcome.decision.reason
    assert await outgoing(rt) == []  # never answered
    doc = await rt.store.db["messages"].find_one({"message_id": "<out-1@example.com>"})
    assert doc is not None and doc["complaint"]["complainant"] == "ivan@example.org"
    listed = await rt.store.suppressions.get(address="ivan@example.org")
    assert listed is not None and listed.source == "complaint"
    # The complainant writes in: a case, but no acknowledgement while listed.
    mail = MAIL.replace(b"hana@example.org", b"ivan@example.org").replace(b"fire-1", b"fire-2")
    new = await process_mail(rt, await store_raw(rt, mail, "2:2"))
    assert new.decision.action == "new_case" and await outgoing(rt) == []
    await remove_suppression(rt, address="ivan@example.org")
    again = mail.replace(b"fire-2", b"fire-3")
    await process_mail(rt, await store_raw(rt, again, "2:3"))
    assert [str(m.to[0].address) for m in await outgoing(rt)] == ["ivan@example.org"]


async def test_a_complaint_we_cannot_tie_goes_to_the_desk(rt: Runtime) -> None:
    msg = await store_raw(rt, _arf("<unknown@example.com>", "joe@example.org"), "3:1")
    with pytest.raises(MailRejected, match=r"spam complaint .* cannot find"):
        await process_mail(rt, msg)
    assert await rt.store.cases.recent() == []
    assert await rt.store.suppressions.get(address="joe@example.org") is None


async def test_an_operator_lists_an_address(rt: Runtime) -> None:
    await add_suppression(rt, entry=SuppressionAdd(address="kim@example.org"), by="cli")
    mail = MAIL.replace(b"hana@example.org", b"kim@example.org").replace(b"fire-1", b"fire-4")
    outcome = await process_mail(rt, await store_raw(rt, mail, "4:1"))
    assert outcome.decision.action == "new_case" and await outgoing(rt) == []


async def test_an_address_that_gets_no_mail_is_kept_and_not_answered(rt: Runtime) -> None:
    mail = MAIL.replace(b"Hana <hana@example.org>", b"Cron <root@localhost>")
    outcome = await process_mail(rt, await store_raw(rt, mail, "5:1"))
    assert outcome.decision.action == "new_case" and await outgoing(rt) == []
    assert outcome.case_number is not None
    [message] = await rt.store.cases.messages(case_number=outcome.case_number)
    assert [(a.address, a.replyable) for a in message.from_] == [("root@localhost", False)]


@pytest.fixture
def thanks_script(tmp_path: Path) -> Iterator[str]:
    """A third-party script that thanks every sender automatically."""
    yield from install_script(
        tmp_path,
        "thanks_everyone",
        """
        async def run(mail, ctx):
            ctx.send_mail("thanks", to=mail.from_[:1], subject="Thanks", text="Thank you.")
        """,
    )


async def test_no_script_mails_a_complaint_or_a_suppressed_address(
    rt: Runtime, thanks_script: str
) -> None:
    scripts = tuple(ScriptSetting(name=n) for n in [thanks_script, *DEFAULT_SCRIPTS])
    processor = rt.config.processor.model_copy(update={"incoming_scripts": scripts})
    rt.config = rt.config.model_copy(update={"processor": processor})
    await process_mail(rt, await store_raw(rt, MAIL, "6:1"))
    thanked = [m for m in await outgoing(rt) if m.subject == "Thanks"]
    assert [str(m.to[0].address) for m in thanked] == ["hana@example.org"]

    await add_suppression(rt, entry=SuppressionAdd(address="kim@example.org"), by="cli")
    mail = MAIL.replace(b"hana@example.org", b"kim@example.org").replace(b"fire-1", b"fire-6")
    await process_mail(rt, await store_raw(rt, mail, "6:2"))
    assert await outgoing(rt) == []

    case, _ = await rt.store.cases.create_for_raw(raw_id="r-6", subject="Case", contact=None)
    ours = CaseMessage.model_validate(
        {"case_number": case.number, "direction": "out", "message_id": "<out-6@example.com>",
         "subject": "Your case", "to": [{"address": "ivan@example.org"}]}
    )  # fmt: skip
    await rt.store.cases.add_message(message=ours)
    report = await process_mail(
        rt, await store_raw(rt, _arf("<out-6@example.com>", "ivan@example.org"), "6:3")
    )
    assert report.decision.action == "attach" and await outgoing(rt) == []
