"""The sender's handlers without servers: FastStream's in-memory broker (``TestRabbitBroker``)
and an in-memory outbox in place of RabbitMQ and MongoDB (no dead-lettering involved)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from typing import Any, cast

from faststream.rabbit import RabbitBroker, RabbitQueue
from faststream.rabbit.testing import TestRabbitBroker

from services.sender.deps import SenderDeps, SenderRepos, SenderSettings
from services.sender.handlers import build_router
from services.sender.notifications import build_notification_router
from services.sender.transport import Refusal, SendResult, Starting
from shared.models.config import OutgoingConnection, SystemConfig
from shared.models.messages import AccountFailing, OutgoingMail
from shared.models.records import OutboxEntry, OutboxStatus, RecipientDelivery
from shared.store.cases import CaseRepo
from shared.store.outbox import OutboxBatcher, OutboxRepo
from shared.store.test_archive import TestArchiveRepo
from shared.topology import (
    MAIL_EXCHANGE,
    RETRY_EXCHANGE,
    SENDER_ACCOUNT_FAILING,
    SENDER_OUTBOUND,
)


class MemoryOutbox:
    """What the handlers ask of the outbox, kept in a dict; every write is logged."""

    def __init__(self) -> None:
        self.entries: dict[str, OutboxEntry] = {}
        self.writes: list[tuple[str, str]] = []
        self.next_attempt: dict[str, datetime] = {}

    async def claim(self, *, entry: OutboxEntry) -> OutboxEntry:
        self.writes.append(("claim", entry.id))
        stored = self.entries.setdefault(entry.id, entry.model_copy(update={"attempts": 0}))
        stored = stored.model_copy(update={"attempts": stored.attempts + 1})
        self.entries[entry.id] = stored
        return stored

    async def claim_send(self, *, mail_id: str) -> None:
        self.writes.append(("claim_send", mail_id))

    async def record(
        self,
        *,
        entry: OutboxEntry,
        status: OutboxStatus,
        recipients: list[RecipientDelivery],
        **fields: Any,
    ) -> OutboxEntry:
        self.writes.append(("record", entry.id))
        done = entry.model_copy(update={"status": status, "recipients": recipients, **fields})
        self.entries[entry.id] = done
        return done

    async def schedule(self, *, mail_id: str, at: datetime) -> None:
        self.next_attempt[mail_id] = at


class Refusing:
    """A transport whose server defers one recipient and takes the other."""

    def __init__(self) -> None:
        self.started: list[bool] = []

    async def send(
        self,
        message: EmailMessage,
        connection: OutgoingConnection,
        recipients: Sequence[str] | None = None,
        *,
        starting: Starting | None = None,
    ) -> SendResult:
        if starting is not None:
            await starting()
        self.started.append(True)
        return SendResult("250 queued", refused={"dave@example.org": Refusal(451, "later")})

    async def close(self) -> None:
        pass


def deps(broker: RabbitBroker, outbox: MemoryOutbox, config: SystemConfig) -> SenderDeps:
    # The handlers use only these methods of the repositories; no case, no test archive.
    repos = SenderRepos(
        outbox=cast(OutboxBatcher, outbox),
        outbox_repo=cast(OutboxRepo, outbox),
        cases=cast(CaseRepo, None),
        test_archive=cast(TestArchiveRepo, None),
    )
    return SenderDeps(
        repos=lambda: repos, publisher=broker, config=lambda: config, settings=SenderSettings()
    )


async def test_a_deferred_recipient_is_retried_alone_after_claim_and_record() -> None:
    broker = RabbitBroker()
    outbox = MemoryOutbox()
    config = SystemConfig.model_validate(
        {"outgoing": {"host": "smtp.example.org", "security": "none"}}
    )
    transport = Refusing()
    broker.include_router(build_router(deps(broker, outbox, config), transport))
    parked: list[OutgoingMail] = []

    @broker.subscriber(RabbitQueue("retry-spy", routing_key="mail.outgoing.*"), RETRY_EXCHANGE)
    async def retry_spy(mail: OutgoingMail) -> None:
        parked.append(mail)

    mail = OutgoingMail(
        mail_id="m-1",
        kind="notification",
        automatic=True,
        to=[{"address": "carol@example.org"}, {"address": "dave@example.org"}],
        subject="Hello",
        text="Hi.\n",
    )
    async with TestRabbitBroker(broker) as test:
        await test.publish(mail, queue=SENDER_OUTBOUND, exchange=MAIL_EXCHANGE)
    # Claimed, the send claimed before the transaction, the outcome recorded after it.
    assert outbox.writes == [("claim", "m-1"), ("claim_send", "m-1"), ("record", "m-1")]
    states = {r.address: r.state for r in outbox.entries["m-1"].recipients}
    assert states == {"carol@example.org": "sent", "dave@example.org": "deferred"}
    assert [m.mail_id for m in parked] == ["m-1"]  # parked in a retry tier
    assert "m-1" in outbox.next_attempt  # and its next attempt shown to operators


async def test_a_failing_account_becomes_one_notification_mail() -> None:
    broker = RabbitBroker()
    config = SystemConfig.model_validate(
        {"addresses": {"notification_recipients": [{"address": "admin@example.org"}]}}
    )
    broker.include_router(build_notification_router(deps(broker, MemoryOutbox(), config)))
    published: list[OutgoingMail] = []

    @broker.subscriber(RabbitQueue("spy", routing_key="mail.outgoing"), MAIL_EXCHANGE)
    async def spy(mail: OutgoingMail) -> None:
        published.append(mail)

    event = AccountFailing(account="support", error="login refused", failures=3)
    async with TestRabbitBroker(broker) as test:
        await test.publish(event, queue=SENDER_ACCOUNT_FAILING, exchange=MAIL_EXCHANGE)
    assert [(m.kind, [str(a.address) for a in m.to]) for m in published] == [
        ("notification", ["admin@example.org"])
    ]
