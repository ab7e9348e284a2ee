"""Delivery state per recipient against a real aiosmtpd server that answers as scripted:
451 then 250 (retried, for that recipient only), 550 for one of two recipients (only that one
fails), 550 for all (the mail goes to the desk), and a server that never answers DATA."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from services.sender.deliver import deliver
from services.sender.deps import SenderDeps
from services.sender.pool import AiosmtplibTransport
from services.sender.service import build as sender_service
from services.sender.transport import OutcomeUnknown
from shared.broker import publish
from shared.config_views import OUTGOING_KEY, OUTGOING_MODULE
from shared.errors import Permanent, Transient
from shared.models.messages import OutgoingMail
from shared.models.records import OutboxEntry
from shared.runtime import Runtime
from shared.service import Stack
from shared.topology import MAIL_OUTGOING, SENDER_FAILED
from tests.integration.sender.helpers import outgoing_mail, serving
from tests.integration.sender.scripted import ScriptedHandler, ScriptedServer
from tests.support import eventually

pytestmark = pytest.mark.integration

CAROL = {"name": "Carol", "address": "carol@example.org"}
DAVE = {"name": "Dave", "address": "dave@example.org"}


def scripted(**script: Any) -> AbstractAsyncContextManager[ScriptedServer]:
    return serving(ScriptedServer(ScriptedHandler(**script)))


async def configure(rt: Runtime, server: ScriptedServer, **conn: Any) -> None:
    value = {"host": "127.0.0.1", "port": server.port, "security": "none", **conn}
    await rt.store.properties.put(module=OUTGOING_MODULE, key=OUTGOING_KEY, value=value, who="t")
    await rt.store.properties.put(module="settings", key="fetch_retries", value=3, who="t")
    await rt.reload_config()


def states(entry: OutboxEntry) -> dict[str, str]:
    return {r.address: r.state for r in entry.recipients}


async def test_451_then_250_is_deferred_then_sent_once(
    rt: Runtime, transport: AiosmtplibTransport
) -> None:
    async with scripted(rcpt={"carol@example.org": ["451 4.7.1 greylisted, try later"]}) as server:
        await configure(rt, server)
        mail = outgoing_mail(to=[CAROL])

        with pytest.raises(Transient, match=r"451 4\.7\.1 greylisted"):
            await deliver(SenderDeps.of(rt), mail, transport)
        waiting = await rt.store.outbox.get(mail_id=mail.mail_id)
        assert waiting is not None and waiting.status == "queued"
        (carol,) = waiting.recipients
        assert (carol.state, carol.reply, carol.attempts) == (
            "deferred",
            "451 4.7.1 greylisted, try later",
            1,
        )
        assert server.handler.received == []

        sent = await deliver(SenderDeps.of(rt), mail, transport)

    assert sent.status == "sent" and states(sent) == {"carol@example.org": "sent"}
    assert sent.recipients[0].attempts == 2 and sent.smtp_reply == "250 OK stored"
    assert [r.rcpt_tos for r in server.handler.received] == [["carol@example.org"]]


async def test_550_for_one_of_two_recipients_fails_only_that_one(
    rt: Runtime, transport: AiosmtplibTransport
) -> None:
    async with scripted(rcpt={"dave@example.org": ["550 5.1.1 no such user"]}) as server:
        await configure(rt, server)
        mail = outgoing_mail(to=[CAROL, DAVE])

        entry = await deliver(SenderDeps.of(rt), mail, transport)
        again = await deliver(SenderDeps.of(rt), mail, transport)  # a redelivery sends nothing

    assert entry.status == again.status == "sent"
    assert states(entry) == {"carol@example.org": "sent", "dave@example.org": "failed"}
    assert entry.recipients[1].reply == "550 5.1.1 no such user"
    assert entry.error == "refused recipients: dave@example.org: 550 5.1.1 no such user"
    (copy,) = server.handler.received
    assert copy.rcpt_tos == ["carol@example.org"]
    assert b"dave@example.org" in copy.content  # still named in To, like any mail client does


async def test_a_deferred_recipient_is_retried_alone(
    rt: Runtime, transport: AiosmtplibTransport
) -> None:
    async with scripted(rcpt={"dave@example.org": ["452 4.2.2 mailbox full"]}) as server:
        await configure(rt, server)
        mail = outgoing_mail(to=[CAROL, DAVE])

        with pytest.raises(Transient, match=r"dave@example\.org: 452"):
            await deliver(SenderDeps.of(rt), mail, transport)
        entry = await deliver(SenderDeps.of(rt), mail, transport)

    assert states(entry) == {"carol@example.org": "sent", "dave@example.org": "sent"}
    assert [r.rcpt_tos for r in server.handler.received] == [
        ["carol@example.org"],
        ["dave@example.org"],
    ]


async def test_a_server_that_never_answers_data_leaves_the_outcome_unknown(
    rt: Runtime, transport: AiosmtplibTransport
) -> None:
    # The whole mail was handed over: the server may have taken it. No recipient gets an
    # outcome and the claim stays, so the redelivery checks it instead of sending again.
    async with scripted(hang_data=True) as server:
        await configure(rt, server, send_timeout_ms=300)
        mail = outgoing_mail(to=[CAROL, DAVE])

        with pytest.raises(OutcomeUnknown, match="timed out"):
            await deliver(SenderDeps.of(rt), mail, transport)

    entry = await rt.store.outbox.get(mail_id=mail.mail_id)
    assert entry is not None and entry.status == "queued" and entry.sending_since is not None
    assert states(entry) == {"carol@example.org": "queued", "dave@example.org": "queued"}


async def test_every_recipient_refused_permanently_fails_the_mail(
    rt: Runtime, transport: AiosmtplibTransport
) -> None:
    async with scripted(rcpt={"carol@example.org": ["550 5.1.1 unknown"]}) as server:
        await configure(rt, server)
        mail = outgoing_mail(to=[CAROL])
        with pytest.raises(Permanent, match="every recipient failed"):
            await deliver(SenderDeps.of(rt), mail, transport)
    entry = await rt.store.outbox.get(mail_id=mail.mail_id)
    assert entry is not None and entry.status == "failed"
    assert states(entry) == {"carol@example.org": "failed"}


@asynccontextmanager
async def running_sender(rt: Runtime) -> AsyncIterator[Stack]:
    stack = Stack([sender_service], rt.settings.model_copy(update={"instance_id": "sender-rcpt"}))
    await stack.start()
    try:
        yield stack
    finally:
        await stack.stop()


async def publish_until(rt: Runtime, mail: OutgoingMail, status: str, what: str) -> OutboxEntry:
    """Publish ``mail`` to the running sender; its outbox entry once it has ``status``."""

    async def entry_with_status() -> OutboxEntry | None:
        entry = await rt.store.outbox.get(mail_id=mail.mail_id)
        return entry if entry is not None and entry.status == status else None

    await publish(rt.broker, mail, routing_key=MAIL_OUTGOING)
    return await eventually(entry_with_status, what=what)


async def test_the_service_retries_a_451_through_the_delay_queue(rt: Runtime) -> None:
    async with scripted(rcpt={"carol@example.org": ["451 4.3.0 try again"]}) as server:
        await configure(rt, server)
        mail = outgoing_mail(to=[CAROL])
        async with running_sender(rt):
            entry = await publish_until(rt, mail, "sent", what="the mail sent on retry")
    assert entry.attempts == 2 and states(entry) == {"carol@example.org": "sent"}
    assert len(server.handler.received) == 1


async def test_a_mail_failing_permanently_goes_to_the_desk_queue(rt: Runtime) -> None:
    async with scripted(rcpt={"carol@example.org": ["554 5.7.1 relay denied"]}) as server:
        await configure(rt, server)
        mail = outgoing_mail(to=[CAROL])
        async with running_sender(rt):
            entry = await publish_until(rt, mail, "failed", what="the mail failed")
            dead = await rt.broker.declare_queue(SENDER_FAILED)

            async def dead_letter() -> Any:
                return await dead.get(no_ack=True, fail=False)

            letter = await eventually(dead_letter, what="the mail in sender.failed")
    assert OutgoingMail.model_validate_json(letter.body).mail_id == mail.mail_id
    assert entry.attempts == 1 and entry.error and "554 5.7.1 relay denied" in entry.error
