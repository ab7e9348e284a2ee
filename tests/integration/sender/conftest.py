"""Fixtures for the sender on real servers: a Runtime with clean sender queues, and TCP
servers from ``helpers`` on free ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from deploy.local.postfix import Postfix, start_postfix
from deploy.local.servers import Dovecot, SmtpSink
from services.sender.pool import AiosmtplibTransport
from shared.runtime import Runtime
from shared.topology import (
    MAIL_OUTGOING,
    RETRY_TIERS,
    SENDER_ACCOUNT_FAILING,
    SENDER_FAILED,
    SENDER_OUTBOUND,
    retry_queue,
)
from tests.integration.sender.helpers import (
    Relay,
    TcpServer,
    hang_up,
    never_greet,
    serving,
    settings,
)


async def _purge_sender_queues(rt: Runtime) -> None:
    # The session's tests share one vhost; other tests may have left outgoing mail behind.
    tiers = [retry_queue(MAIL_OUTGOING, delay) for delay in RETRY_TIERS]
    for queue in (SENDER_OUTBOUND, SENDER_FAILED, SENDER_ACCOUNT_FAILING, *tiers):
        declared = await rt.broker.declare_queue(queue)
        await declared.purge()


@pytest.fixture
async def rt(rabbit_url: str, mongo_url: str, mongo_db_name: str) -> AsyncIterator[Runtime]:
    """A Runtime on this test's database, with the broker connected and sender queues empty."""
    runtime = Runtime(settings(rabbit_url, mongo_url, mongo_db_name, "sender-test"))
    await runtime.start_store()
    await runtime.start_broker()
    await _purge_sender_queues(runtime)
    yield runtime
    await _purge_sender_queues(runtime)
    await runtime.broker.stop()
    await runtime.close()


@pytest.fixture
async def relay(smtp_sink: SmtpSink) -> AsyncIterator[Relay]:
    """A counting relay to the sink's plain/STARTTLS port."""
    server = Relay(smtp_sink.port)
    await server.start()
    yield server
    server.cut()
    await server.stop()


@pytest.fixture
async def transport() -> AsyncIterator[AiosmtplibTransport]:
    """An SMTP transport for calling ``deliver`` directly, closed after the test."""
    smtp = AiosmtplibTransport()
    yield smtp
    await smtp.close()


@pytest.fixture
async def hanging_up_server() -> AsyncIterator[TcpServer]:
    """A server that closes every connection before the SMTP greeting."""
    async with serving(TcpServer(hang_up)) as server:
        yield server


@pytest.fixture
async def silent_server() -> AsyncIterator[TcpServer]:
    """A server that accepts connections and never says a word."""
    async with serving(TcpServer(never_greet)) as server:
        yield server


@pytest.fixture(scope="session")
def postfix(state_dir: Path, dovecot: Dovecot, smtp_sink: SmtpSink) -> Iterator[Postfix]:
    """A real Postfix: STARTTLS, SASL (password or XOAUTH2) through Dovecot, relaying all
    mail to the sink's plain port."""
    server = start_postfix(state_dir, dovecot, relay_port=smtp_sink.port)
    yield server
    server.stop()
