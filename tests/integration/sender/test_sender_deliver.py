"""deliver() and the sender service on real MongoDB, RabbitMQ and the SMTP sink: idempotent
under redelivery, the case knows the Message-ID before the mail leaves, transient failures
wait in the retry tier, exhausted ones land in ``sender.failed``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import pytest
from aiormq.exceptions import ChannelInvalidStateError

from deploy.local.servers import SmtpSink
from services.sender import handlers as sender_handlers
from services.sender.deliver import deliver
from services.sender.deps import SenderDeps
from services.sender.handlers import build_router
from services.sender.pool import AiosmtplibTransport
from services.sender.service import build as sender_service
from services.sender.transport import SendResult, Starting
from shared.broker import publish
from shared.config_views import OUTGOING_KEY, OUTGOING_MODULE, seal_secrets
from shared.errors import Permanent, Transient
from shared.models.config import OutgoingConnection
from shared.models.messages import OutgoingMail
from shared.models.records import OutboxEntry
from shared.retry import ATTEMPT_HEADER, ERROR_HEADER, retry_later
from shared.runtime import Runtime
from shared.service import Service, Stack
from shared.topology import MAIL_OUTGOING, SENDER_FAILED, retry_queue
from tests.integration.sender.helpers import (
    TcpServer,
    connection,
    outgoing_mail,
    received,
)
from tests.support import eventually

pytestmark = pytest.mark.integration


@dataclass
class CaseCheckingTransport:
    """The real transport, checking first that the case already knows the Message-ID."""

    rt: Runtime
    inner: AiosmtplibTransport
    case_number: int

    async def send(
        self,
        message: EmailMessage,
        conn: OutgoingConnection,
        recipients: Sequence[str] | None = None,
        *,
        starting: Starting | None = None,
    ) -> SendResult:
        ids = [str(message["Message-ID"])]
        assert await self.rt.store.cases.case_of_message_ids(message_ids=ids) == self.case_number
        return await self.inner.send(message, conn, recipients, starting=starting)

    async def close(self) -> None:
        await self.inner.close()


async def configure(rt: Runtime, conn: OutgoingConnection, **settings_: Any) -> None:
    """Store the connection (and global settings) as properties, as the config service does."""
    value = seal_secrets(conn.model_dump(mode="json") | {"password": conn.password}, rt.box)
    await rt.store.properties.put(module=OUTGOING_MODULE, key=OUTGOING_KEY, value=value, who="t")
    for key, setting in settings_.items():
        await rt.store.properties.put(module="settings", key=key, value=setting, who="t")
    await rt.reload_config()


async def test_redelivery_sends_once_and_the_case_knows_the_message_id_first(
    rt: Runtime, smtp_sink: SmtpSink, transport: AiosmtplibTransport
) -> None:
    await configure(rt, connection(smtp_sink))
    case, _ = await rt.store.cases.create_for_raw(raw_id="raw-1", subject="Printer", contact=None)
    mail = outgoing_mail(case_number=case.number, automatic=True, kind="acknowledgement")
    checking = CaseCheckingTransport(rt, transport, case.number)

    first = await deliver(SenderDeps.of(rt), mail, checking)
    second = await deliver(SenderDeps.of(rt), mail, checking)  # the broker redelivered the message

    (copy,) = received(smtp_sink, first.message_id)
    assert copy["Subject"] == f"Your printer [Case#{case.number}]"
    assert copy["Auto-Submitted"] == "auto-generated"
    assert first.status == second.status == "sent"
    assert second.attempts == 2 and second.smtp_reply and second.smtp_reply.startswith("250")
    (out,) = await rt.store.cases.messages(case_number=case.number)
    assert (out.direction, out.outbox_id, out.message_id) == (
        "out",
        mail.mail_id,
        copy["Message-ID"],
    )


async def test_an_acknowledgement_leaves_the_case_updated_time_a_reply_moves_it(
    rt: Runtime, smtp_sink: SmtpSink, transport: AiosmtplibTransport
) -> None:
    await configure(rt, connection(smtp_sink))
    created, _ = await rt.store.cases.create_for_raw(raw_id="raw-1", subject="Pr", contact=None)
    case = await rt.store.cases.get(number=created.number)  # as stored (milliseconds)
    assert case is not None
    ack = outgoing_mail(case_number=case.number, automatic=True, kind="acknowledgement")
    await deliver(SenderDeps.of(rt), ack, transport)
    after_ack = await rt.store.cases.get(number=case.number)
    assert after_ack is not None and after_ack.updated_at == case.updated_at
    reply = outgoing_mail(case_number=case.number, kind="reply")
    await deliver(SenderDeps.of(rt), reply, transport)
    after_reply = await rt.store.cases.get(number=case.number)
    assert after_reply is not None and after_reply.updated_at > case.updated_at
    assert len(await rt.store.cases.messages(case_number=case.number)) == 2


async def test_without_an_outgoing_connection_delivery_is_transient(
    rt: Runtime, transport: AiosmtplibTransport
) -> None:
    with pytest.raises(Transient, match="no outgoing SMTP connection is configured"):
        await deliver(SenderDeps.of(rt), outgoing_mail(), transport)


async def test_a_permanent_failure_is_recorded_on_the_outbox_entry(
    rt: Runtime, smtp_sink: SmtpSink, transport: AiosmtplibTransport
) -> None:
    await configure(rt, connection(smtp_sink, password="not-alices-password"))
    mail = outgoing_mail()

    with pytest.raises(Permanent):
        await deliver(SenderDeps.of(rt), mail, transport)

    entry = await rt.store.outbox.get(mail_id=mail.mail_id)
    assert entry is not None and entry.status == "failed" and entry.error
    assert "refused the login of user 'alice'" in entry.error
    assert "not-alices-password" not in entry.error


@asynccontextmanager
async def running_sender(rt: Runtime) -> AsyncIterator[Stack]:
    """The sender service in its own Stack (own broker connection), on ``rt``'s database."""
    stack = Stack([sender_service], rt.settings.model_copy(update={"instance_id": "sender-svc"}))
    await stack.start()
    try:
        yield stack
    finally:
        await stack.stop()


async def outbox_entry(rt: Runtime, mail_id: str, **expected: Any) -> OutboxEntry | None:
    entry = await rt.store.outbox.get(mail_id=mail_id)
    if entry and all(getattr(entry, k) == v for k, v in expected.items()):
        return entry
    return None


async def test_published_mail_reaches_the_sink_and_the_outbox_says_sent(
    rt: Runtime, smtp_sink: SmtpSink
) -> None:
    await configure(rt, connection(smtp_sink, security="tls", port=smtp_sink.smtps_port))
    mail = outgoing_mail(subject="Through the broker")
    async with running_sender(rt):
        await publish(rt.broker, mail, routing_key=MAIL_OUTGOING)
        entry = await eventually(
            lambda: outbox_entry(rt, mail.mail_id, status="sent"), what="the outbox entry sent"
        )
    (copy,) = received(smtp_sink, entry.message_id)
    assert copy["Subject"] == "Through the broker"


async def test_transient_failure_is_parked_in_the_retry_tier(
    rt: Runtime, hanging_up_server: TcpServer
) -> None:
    await configure(rt, plain(hanging_up_server))
    mail = outgoing_mail()
    async with running_sender(rt):
        await publish(rt.broker, mail, routing_key=MAIL_OUTGOING)
        tier = await rt.broker.declare_queue(retry_queue(MAIL_OUTGOING, 5))

        async def parked() -> Any:
            return await tier.get(no_ack=True, fail=False)

        waiting = await eventually(parked, what="the mail in the 5 s retry tier")
    assert waiting.headers[ATTEMPT_HEADER] == 1
    assert outgoing_mail_id(waiting.body) == mail.mail_id
    entry = await rt.store.outbox.get(mail_id=mail.mail_id)
    assert entry is not None and (entry.status, entry.attempts) == ("queued", 1)


async def test_a_retry_the_broker_refuses_hands_the_mail_back_instead_of_dead_lettering_it(
    rt: Runtime, hanging_up_server: TcpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The chaos run: right after the broker came back, parking a mail for its retry failed on
    # a channel not yet reopened; the consumer's reject dead-lettered it to the desk.
    await configure(rt, plain(hanging_up_server))
    mail = outgoing_mail()
    refused: list[str] = []

    async def refused_once(*args: Any, **kwargs: Any) -> int:
        if not refused:
            refused.append("once")
            raise ChannelInvalidStateError("channel closed")
        return await retry_later(*args, **kwargs)

    monkeypatch.setattr(sender_handlers, "retry_later", refused_once)
    async with running_sender(rt):
        await publish(rt.broker, mail, routing_key=MAIL_OUTGOING)
        tier = await rt.broker.declare_queue(retry_queue(MAIL_OUTGOING, 5))

        async def parked() -> Any:
            return await tier.get(no_ack=True, fail=False)

        waiting = await eventually(parked, what="the mail in the 5 s retry tier")
    assert refused and outgoing_mail_id(waiting.body) == mail.mail_id
    dead = await rt.broker.declare_queue(SENDER_FAILED)
    assert await dead.get(no_ack=True, fail=False) is None


async def test_a_mail_past_its_queue_lifetime_goes_to_sender_failed_with_the_reason(
    rt: Runtime, hanging_up_server: TcpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A lifetime shorter than the first retry's wait: the second attempt gives up.
    monkeypatch.setenv("MAILROOM_RETRY_SENDER__LIFETIME_S", "1")
    await configure(rt, plain(hanging_up_server))
    mail = outgoing_mail()
    async with running_sender(rt):
        await publish(rt.broker, mail, routing_key=MAIL_OUTGOING)
        entry = await eventually(
            lambda: outbox_entry(rt, mail.mail_id, status="failed"), what="the mail given up"
        )
        dead = await rt.broker.declare_queue(SENDER_FAILED)

        async def dead_letter() -> Any:
            return await dead.get(no_ack=True, fail=False)

        letter = await eventually(dead_letter, what="the mail in sender.failed")
    assert outgoing_mail_id(letter.body) == mail.mail_id
    assert letter.headers[ERROR_HEADER] == entry.error
    # Given up at the first delivery past the lifetime, not after a number of attempts.
    assert entry.attempts >= 2 and entry.error
    assert entry.error.startswith("not delivered within 0 h (")
    assert "waiting for retry:" in entry.error and "SMTP server 127.0.0.1:" in entry.error
    (carol,) = entry.recipients
    assert carol.state == "failed"


@dataclass
class FailingTransport:
    """A transport whose every send raises ``error``."""

    error: Exception

    async def send(
        self,
        message: EmailMessage,
        conn: OutgoingConnection,
        recipients: Sequence[str] | None = None,
        *,
        starting: Starting | None = None,
    ) -> SendResult:
        raise self.error

    async def close(self) -> None:
        return None


@pytest.mark.parametrize(
    ("error", "recorded"),
    [
        (Permanent("SMTP server x:25 refused the message: 554 spam"), "554 spam"),
        (RuntimeError("a bug"), "unexpected RuntimeError: a bug"),
    ],
)
async def test_permanent_failures_and_bugs_are_recorded_and_dead_lettered(
    rt: Runtime, smtp_sink: SmtpSink, error: Exception, recorded: str
) -> None:
    await configure(rt, connection(smtp_sink))
    mail = outgoing_mail()

    def failing_sender(runtime: Runtime) -> Service:
        return Service(
            name="sender", routers=[build_router(SenderDeps.of(runtime), FailingTransport(error))]
        )

    stack = Stack([failing_sender], rt.settings.model_copy(update={"instance_id": "failing"}))
    await stack.start()
    try:
        await publish(rt.broker, mail, routing_key=MAIL_OUTGOING)
        entry = await eventually(
            lambda: outbox_entry(rt, mail.mail_id, status="failed"), what="the mail failed"
        )
        dead = await rt.broker.declare_queue(SENDER_FAILED)

        async def dead_letter() -> Any:
            return await dead.get(no_ack=True, fail=False)

        letter = await eventually(dead_letter, what="the mail in sender.failed")
    finally:
        await stack.stop()
    assert outgoing_mail_id(letter.body) == mail.mail_id
    assert entry.attempts == 1 and entry.error and recorded in entry.error


def plain(server: TcpServer) -> OutgoingConnection:
    return OutgoingConnection(host="127.0.0.1", port=server.port, security="none")


def outgoing_mail_id(body: bytes) -> str:
    return OutgoingMail.model_validate_json(body).mail_id
