"""Fixtures for the fetcher on real servers: a connected Runtime with an empty inbound
queue, mailboxes that are always closed, and a server that never answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from deploy.local.servers import Dovecot
from shared.mailbox import Mailbox
from shared.mailbox import open_mailbox as make_mailbox
from shared.models.config import IncomingAccount
from shared.runtime import Runtime
from tests.integration.fetcher.helpers import announced
from tests.support import server_settings

MailboxMaker = Callable[..., Mailbox]


@pytest.fixture
async def rt(rabbit_url: str, mongo_url: str, mongo_db_name: str) -> AsyncIterator[Runtime]:
    """A Runtime on this test's database with the broker connected and topology declared."""
    runtime = Runtime(
        server_settings(
            rabbit_url=rabbit_url,
            mongo_url=mongo_url,
            database=mongo_db_name,
            instance="fetcher-test",
        )
    )
    await runtime.start_store()
    await runtime.start_broker()
    await announced(runtime)  # the session's tests share one vhost
    yield runtime
    await announced(runtime)
    await runtime.broker.stop()
    await runtime.close()


@pytest.fixture
def bob(dovecot: Dovecot) -> Dovecot:
    """Dovecot with bob's INBOX emptied."""
    dovecot.reset_mailbox("bob")
    return dovecot


@pytest.fixture
async def open_mailbox() -> AsyncIterator[MailboxMaker]:
    """Make the account's mailbox, IMAP or POP3 (timeout 10 s unless given), closed after."""
    made: list[Mailbox] = []

    def make(account: IncomingAccount, timeout: float = 10.0) -> Mailbox:
        mailbox = make_mailbox(account, timeout=timeout)
        made.append(mailbox)
        return mailbox

    yield make
    for mailbox in made:
        await mailbox.close()


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A server that accepts connections, reads nothing and never answers (not even a
    greeting)."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()
