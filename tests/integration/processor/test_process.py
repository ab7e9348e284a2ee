"""The processor on real MongoDB and RabbitMQ: idempotent under redelivery, failures to the desk.

Crash proof: a crash can only interrupt ``process_mail`` between its steps; the message is
then redelivered and ``process_mail`` runs again from the start. These tests run the step
again after each possible interruption point and check nothing is doubled.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from faststream.rabbit import RabbitQueue

from services.config.service import build as config_service
from services.processor.process import process_mail
from services.processor.service import build as processor_service
from shared.broker import publish
from shared.models.messages import CaseEvent
from shared.models.records import CaseMessage
from shared.runtime import Runtime
from shared.service import Stack
from shared.topology import MAIL_EXCHANGE, MAIL_RECEIVED
from tests.integration.processor.helpers import outgoing, store_raw
from tests.support import eventually, make_mail, server_settings

CORPUS = Path(__file__).parents[2] / "data" / "mail"


async def test_redelivery_after_each_step_creates_one_case_and_one_acknowledgement(
    rt: Runtime,
) -> None:
    events = await rt.broker.declare_queue(
        RabbitQueue(f"events-{uuid.uuid4().hex}", exclusive=True, auto_delete=True)
    )
    await events.bind(MAIL_EXCHANGE.name, "case.#")
    data, mid = make_mail(subject="Broken screen", sender="eve@example.org")
    msg = await store_raw(rt, data, "1:1")
    # interruption 1: the case was created, nothing else happened
    early, created = await rt.store.cases.create_for_raw(
        raw_id=msg.raw_id, subject="x", contact=None
    )
    assert created
    # the redelivered message, twice more (interruption after publishing, before the ack)
    first = await process_mail(rt, msg)
    await rt.store.raw_emails.set_status(raw_id=msg.raw_id, status="announced")
    second = await process_mail(rt, msg)
    third = await process_mail(rt, msg)
    assert first.case_number == second.case_number == third.case_number == early.number
    assert third.duplicate_delivery
    assert len(await rt.store.cases.recent()) == 1
    messages = await rt.store.cases.messages(case_number=early.number)
    assert [m.message_id for m in messages] == [mid]
    acks = await outgoing(rt)
    assert len(acks) == 2 and len({a.mail_id for a in acks}) == 1  # same idempotency key
    assert acks[0].to[0].address == "eve@example.org" and acks[0].automatic
    published = []
    while (event := await events.get(no_ack=True, fail=False)) is not None:
        published.append((event.routing_key, CaseEvent.model_validate_json(event.body)))
    assert {key for key, _ in published} == {"case.created"}
    assert all(e.case_number == early.number and e.raw_id == msg.raw_id for _, e in published)


async def test_redelivery_after_the_first_attempt_created_the_case_reuses_it(rt: Runtime) -> None:
    # The first attempt skips looking for its case; the second must look and find it.
    msg = await store_raw(rt, make_mail(subject="Crashed", sender="kim@example.org")[0], "1:5")
    record, data = await rt.store.raw_emails.start_attempt(raw_id=msg.raw_id)
    assert record.attempts == 1 and data is not None
    early, created = await rt.store.cases.create_for_raw(
        raw_id=msg.raw_id, subject="Crashed", contact=None, first_attempt=True
    )
    assert created
    redelivered = await process_mail(rt, msg)
    assert redelivered.case_number == early.number
    [message] = await rt.store.cases.messages(case_number=early.number)
    assert message.raw_id == msg.raw_id
    case = await rt.store.cases.get(number=early.number)
    assert case is not None and case.updated_at > early.updated_at  # touched by the mail
    following = await store_raw(rt, make_mail(subject="Next", sender="kim@example.org")[0], "1:6")
    assert (await process_mail(rt, following)).case_number == early.number + 1  # none wasted


async def test_auto_replies_open_a_case_but_are_never_acknowledged(rt: Runtime) -> None:
    data, _ = make_mail(subject="Out of office", sender="bot@example.org")
    data = b"Auto-Submitted: auto-replied\r\n" + data
    outcome = await process_mail(rt, await store_raw(rt, data, "1:2"))
    assert outcome.decision.action == "new_case"
    assert await outgoing(rt) == []


async def test_unparseable_mail_lands_on_the_desk_with_its_reason(
    rabbit_url: str, mongo_url: str, mongo_db_name: str, rt: Runtime
) -> None:
    stack = Stack(
        [processor_service, config_service],
        server_settings(
            rabbit_url=rabbit_url,
            mongo_url=mongo_url,
            database=mongo_db_name,
            instance="proc-desk",
        ),
    )
    await stack.start()
    try:
        msg = await store_raw(rt, b"   \r\n", "1:3")
        await publish(rt.broker, msg, routing_key=MAIL_RECEIVED)

        async def on_desk() -> list[object]:
            return list(await rt.store.desk.search())

        entries = await eventually(on_desk, what="the unparseable mail on the desk")
        entry = await rt.store.desk.get(failed_id=f"processor:{msg.raw_id}")
        assert len(entries) == 1
        assert "unparseable mail" in entry.error and entry.account == "support"
        raw = await rt.store.raw_emails.get(raw_id=msg.raw_id)
        assert raw.status == "failed" and raw.error == entry.error
    finally:
        await stack.stop()


async def test_processor_queue_declarations_agree_with_the_topology(rt: Runtime) -> None:
    # Declaring again with the same arguments succeeds only if they match what exists.
    declared = await rt.broker.declare_queue(
        RabbitQueue("processor.inbound", durable=True, declare=False)
    )
    assert declared.name == "processor.inbound"


async def test_a_bounce_to_our_verp_address_marks_the_mail_it_reports_on(rt: Runtime) -> None:
    data, _ = make_mail(subject="Printer", sender="ivy@example.org")
    first = await process_mail(rt, await store_raw(rt, data, "1:5"))
    assert first.case_number is not None
    ours = CaseMessage.model_validate(
        {
            "case_number": first.case_number,
            "direction": "out",
            "message_id": "<ack-42@example.com>",
            "outbox_id": "ack-42",
            "subject": "Printer",
        }
    )
    await rt.store.cases.add_message(message=ours)
    # The MTA returned nothing of our mail: only the address it bounced to names it.
    dsn = (CORPUS / "bounce-dsn-verp.eml").read_bytes().replace(b"ack-1f3a9c", b"ack-42")
    outcome = await process_mail(rt, await store_raw(rt, dsn, "1:6"))
    assert (outcome.decision.action, outcome.case_number) == ("attach", first.case_number)
    assert "VERP" in outcome.decision.reason
    marked = await rt.store.db["messages"].find_one({"outbox_id": "ack-42"})
    assert marked is not None and marked["bounce"]["status"] == "5.1.1"
    assert len(await rt.store.cases.recent()) == 1
