"""A reply is sent once even when MongoDB goes away right after the SMTP server accepted it
(the outcome is recorded while the message is held, issue 14 defect 3), and a mail whose
SMTP transaction was claimed but never finished is checked, not sent blindly."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from pymongo import AsyncMongoClient

from services.sender.deliver import deliver
from services.sender.deps import SenderDeps
from services.sender.pool import AiosmtplibTransport
from services.sender.transport import OutcomeUnknown
from shared.errors import Permanent, Transient
from shared.models.messages import utcnow
from shared.models.records import OutboxEntry, RecipientDelivery
from shared.runtime import Runtime
from shared.store import Store
from tests.integration.sender.helpers import (
    lost_after_handover_is_checked_not_resent,
    outgoing_mail,
    serving,
)
from tests.integration.sender.scripted import ScriptedHandler, ScriptedServer
from tests.integration.sender.test_sender_recipients import CAROL, configure
from tests.outage import Gate, gate_for

pytestmark = pytest.mark.integration


@dataclass
class CuttingHandler(ScriptedHandler):
    """Accepts the mail, and takes MongoDB away as it does so."""

    gate: Gate | None = None
    accepted: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert self.gate is not None
        await self.gate.cut()
        reply = await super().handle_DATA(server, session, envelope)
        self.accepted.set()
        return reply


async def test_an_accepted_mail_is_recorded_after_the_outage_and_not_sent_again(
    rt: Runtime, transport: AiosmtplibTransport, mongo_url: str
) -> None:
    handler = CuttingHandler()
    async with serving(ScriptedServer(handler)) as server, gate_for(mongo_url) as gate:
        handler.gate = gate
        await configure(rt, server)
        direct = rt.store
        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
            gate.url(mongo_url), serverSelectionTimeoutMS=500, tz_aware=True
        )
        rt._store = Store(client, direct.db.name)
        mail = outgoing_mail(to=[CAROL])
        try:
            sending = asyncio.create_task(deliver(SenderDeps.of(rt), mail, transport))
            await handler.accepted.wait()  # the server has the mail; MongoDB is away
            await asyncio.sleep(1.0)  # an outage: the outcome's record fails meanwhile
            assert not sending.done()
            await gate.restore()
            entry = await sending
            again = await deliver(
                SenderDeps.of(rt), mail, transport
            )  # the redelivery after a retry
        finally:
            rt._store = direct
            await client.close()
    assert entry.status == "sent" and again.status == "sent"
    assert entry.sending_since is None
    assert len(handler.received) == 1


@dataclass
class HoldingHandler(ScriptedHandler):
    """Holds the answer to DATA until released: a transaction under way."""

    in_data: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.in_data.set()
        await self.release.wait()
        return await super().handle_DATA(server, session, envelope)


async def test_a_stop_during_the_transaction_lets_it_end_and_records_the_outcome(
    rt: Runtime, transport: AiosmtplibTransport
) -> None:
    handler = HoldingHandler()
    async with serving(ScriptedServer(handler)) as server:
        await configure(rt, server)
        mail = outgoing_mail(to=[CAROL])
        sending = asyncio.create_task(deliver(SenderDeps.of(rt), mail, transport))
        await handler.in_data.wait()
        sending.cancel()  # the service stops (SIGTERM) or the broker's channel closes
        await asyncio.sleep(0.2)
        handler.release.set()
        with pytest.raises(asyncio.CancelledError):
            await sending
        entry = await rt.store.outbox.get(mail_id=mail.mail_id)
        again = await deliver(SenderDeps.of(rt), mail, transport)  # the broker's redelivery
    assert entry is not None and entry.status == "sent" and entry.sending_since is None
    assert again.status == "sent"
    assert len(handler.received) == 1


async def test_a_claim_without_an_outcome_is_checked_not_sent(
    rt: Runtime, transport: AiosmtplibTransport
) -> None:
    async with serving(ScriptedServer(ScriptedHandler())) as server:
        await configure(rt, server)
        mail = outgoing_mail(to=[CAROL])
        claimed = OutboxEntry(
            id=mail.mail_id,
            message_id="<claimed@example.com>",
            case_number=None,
            kind=mail.kind,
            to=mail.to,
            subject=mail.subject,
            recipients=[RecipientDelivery(address=CAROL["address"])],
            sending_since=utcnow(),  # as an attempt leaves it when killed mid-transaction
        )
        await rt.store.outbox.claim(entry=claimed)
        # A fresh claim may be another instance still sending: retried later.
        with pytest.raises(Transient, match="may still be sending"):
            await deliver(SenderDeps.of(rt), mail, transport)
        old = utcnow() - timedelta(hours=1)
        await rt.store.db["outbox"].update_one(
            {"_id": mail.mail_id}, {"$set": {"sending_since": old}}
        )
        with pytest.raises(Permanent, match="possibly sent"):
            await deliver(SenderDeps.of(rt), mail, transport)
        entry = await rt.store.outbox.get(mail_id=mail.mail_id)
        assert server.handler.received == []
    assert entry is not None and entry.status == "failed"
    assert [r.state for r in entry.recipients] == ["unknown"]
    assert entry.error is not None and entry.message_id in entry.error


@dataclass
class DroppingHandler(ScriptedHandler):
    """Breaks the connection at ``stage``: after taking the whole mail (before answering
    DATA: RFC 1047's duplicate window), or at RCPT (before any of the mail was sent)."""

    stage: str = "data"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.stage == "rcpt":
            assert isinstance(server.transport, asyncio.Transport)
            server.transport.abort()
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = await super().handle_DATA(server, session, envelope)  # the server keeps it
        assert isinstance(server.transport, asyncio.Transport)
        server.transport.abort()
        return reply


async def test_a_drop_after_the_whole_mail_was_handed_over_is_checked_not_sent_again(
    rt: Runtime, transport: AiosmtplibTransport
) -> None:
    handler = DroppingHandler()
    async with serving(ScriptedServer(handler)) as server:
        await configure(rt, server)
        await lost_after_handover_is_checked_not_resent(rt, outgoing_mail(to=[CAROL]), transport)
    assert len(handler.received) == 1  # sent once, never a second time


async def test_a_drop_before_the_mail_was_handed_over_is_retried(
    rt: Runtime, transport: AiosmtplibTransport
) -> None:
    async with serving(ScriptedServer(DroppingHandler(stage="rcpt"))) as server:
        await configure(rt, server)
        mail = outgoing_mail(to=[CAROL])
        with pytest.raises(Transient) as raised:
            await deliver(SenderDeps.of(rt), mail, transport)
        entry = await rt.store.outbox.get(mail_id=mail.mail_id)
    assert not isinstance(raised.value, OutcomeUnknown)
    assert entry is not None and entry.sending_since is None  # an outcome: deferred
    assert [r.state for r in entry.recipients] == ["deferred"]
