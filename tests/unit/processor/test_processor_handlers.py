"""The processor's subscriber without servers: built from its deps, run under
``TestRabbitBroker`` (the retries and dead letters it publishes itself; RabbitMQ's own
dead-lettering at the delivery limit needs the real broker, see tests/integration).

The store is a stand-in for the three calls the handler makes before the domain step
fails: the failure routing is the subject, not MongoDB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from faststream.rabbit import RabbitBroker, RabbitMessage, TestRabbitBroker

from services.processor.handlers import build_router
from services.processor.settings import ProcessorProcessSettings
from shared.errors import StoreUnavailable
from shared.models.config import SystemConfig
from shared.models.messages import MailReceived
from shared.models.records import RawEmail
from shared.retry import ATTEMPT_HEADER, ERROR_HEADER
from shared.store import Store
from shared.topology import (
    DLX_EXCHANGE,
    MAIL_EXCHANGE,
    MAIL_RECEIVED,
    PROCESSOR_FAILED,
    RETRY_EXCHANGE,
    RETRY_TIERS,
    retry_queue,
)


@dataclass
class RawEmails:
    """``raw_emails`` whose mail is ``data``, or unreachable (``away``)."""

    data: bytes = b""
    away: bool = False
    failures: list[str] = field(default_factory=list)

    async def start_attempt(
        self, *, raw_id: str, alone: bool = False, read_up_to: int | None = None
    ) -> tuple[RawEmail, bytes | None]:
        if self.away:
            raise StoreUnavailable("MongoDB is not answering")
        record = RawEmail(
            _id=raw_id, account="support", source_key="1:1", folder="INBOX", size=len(self.data),
            sha256="0" * 64, attempts=1,
        )  # fmt: skip
        return record, self.data

    async def finish_attempt(self, *, raw_id: str) -> None:
        if self.away:
            raise StoreUnavailable("MongoDB is not answering")

    async def record_failure(self, *, raw_id: str, error: str) -> None:
        if self.away:
            raise StoreUnavailable("MongoDB is not answering")
        self.failures.append(error)


@dataclass
class FakeStore:
    raw_emails: RawEmails


@dataclass
class Deps:
    """A ProcessorDeps of a test: what the handler uses, nothing more."""

    store: Store
    broker: RabbitBroker
    config: SystemConfig = field(default_factory=SystemConfig)


def processor(raw: RawEmails) -> tuple[RabbitBroker, Deps]:
    broker = RabbitBroker()
    deps = Deps(store=cast(Store, FakeStore(raw)), broker=broker)
    broker.include_router(build_router(deps, ProcessorProcessSettings(prefetch=4, concurrency=2)))
    return broker, deps


async def test_a_store_outage_parks_the_mail_for_a_retry_and_leaves_the_desk_alone() -> None:
    raw = RawEmails(away=True)
    broker, _ = processor(raw)

    @broker.subscriber(retry_queue(MAIL_RECEIVED, RETRY_TIERS[0]), RETRY_EXCHANGE)
    async def parked(msg: MailReceived) -> None: ...

    @broker.subscriber(PROCESSOR_FAILED, DLX_EXCHANGE)
    async def desk(msg: MailReceived) -> None: ...

    async with TestRabbitBroker(broker) as br:
        mail = MailReceived(raw_id="r1", account="support", source_key="1:1")
        await br.publish(mail, exchange=MAIL_EXCHANGE, routing_key=MAIL_RECEIVED)
        parked.mock.assert_called_once()
        assert parked.mock.call_args.args[0]["raw_id"] == "r1"
        desk.mock.assert_not_called()
    assert raw.failures == []


async def test_a_mail_that_is_not_a_mail_goes_to_the_desk_with_its_reason() -> None:
    raw = RawEmails(data=b"\x00\x01 not a mail at all")
    broker, _ = processor(raw)
    reasons: list[str] = []

    @broker.subscriber(PROCESSOR_FAILED, DLX_EXCHANGE)
    async def desk(msg: MailReceived, message: RabbitMessage) -> None:
        reasons.append(str(message.headers.get(ERROR_HEADER)))

    async with TestRabbitBroker(broker) as br:
        mail = MailReceived(raw_id="r2", account="support", source_key="1:2")
        await br.publish(
            mail, exchange=MAIL_EXCHANGE, routing_key=MAIL_RECEIVED, headers={ATTEMPT_HEADER: 0}
        )
        desk.mock.assert_called_once()
    assert len(raw.failures) == 1 and reasons == raw.failures
