"""Helpers for the sender's integration tests: settings, mails, and small TCP servers that
misbehave on purpose (the SMTP sink itself always behaves)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from email.message import EmailMessage
from typing import Any, Protocol, TypeVar

import pytest

from deploy.local.servers import SmtpSink
from services.sender.deliver import deliver
from services.sender.deps import SenderDeps
from services.sender.transport import OutcomeUnknown, OutgoingTransport
from shared.errors import Permanent
from shared.models.config import OutgoingConnection
from shared.models.messages import OutgoingMail, utcnow
from shared.runtime import Runtime
from shared.settings import SharedSettings
from tests.support import server_settings

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Startable(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


S = TypeVar("S", bound=Startable)


@contextlib.asynccontextmanager
async def serving(server: S) -> AsyncIterator[S]:
    """``server`` started for the block, stopped after it however it ends."""
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def settings(rabbit_url: str, mongo_url: str, database: str, instance: str) -> SharedSettings:
    """Process settings for one test's Runtime or Stack."""
    return server_settings(
        rabbit_url=rabbit_url, mongo_url=mongo_url, database=database, instance=instance
    )


def connection(sink: SmtpSink, **fields: Any) -> OutgoingConnection:
    """The sink's STARTTLS port as alice, trusting the sink's certificate; ``fields`` override."""
    base: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": sink.port,
        "security": "starttls",
        "username": "alice",
        "password": "alicepw",
        "ca_file": str(sink.cert_file),
        "connect_timeout_ms": 5_000,
        "send_timeout_ms": 10_000,
    }
    return OutgoingConnection.model_validate({**base, **fields})


def outgoing_mail(**fields: Any) -> OutgoingMail:
    """A reply to carol with a fresh mail_id; ``fields`` override."""
    base: dict[str, Any] = {
        "mail_id": f"test-{uuid.uuid4().hex}",
        "kind": "reply",
        "automatic": False,
        "to": [{"name": "Carol", "address": "carol@example.org"}],
        "subject": "Your printer",
        "text": "It works again.\n",
    }
    return OutgoingMail.model_validate({**base, **fields})


def received(sink: SmtpSink, message_id: str) -> list[EmailMessage]:
    """Every copy of the message with ``message_id`` the sink accepted."""
    return [m for m in sink.messages() if m["Message-ID"] == message_id]


class TcpServer:
    """A local TCP server on a free port running ``handler`` for each connection."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        """Listen on 127.0.0.1 on a port the kernel picks."""
        self._server = await asyncio.start_server(self._handler, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening (open connections end when their clients give up)."""
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


class Relay(TcpServer):
    """A TCP relay in front of the sink that counts connections and can cut them all."""

    def __init__(self, target_port: int) -> None:
        super().__init__(self._relay)
        self._target_port = target_port
        self._writers: list[asyncio.StreamWriter] = []
        self.connections = 0

    def cut(self) -> None:
        """Close every relayed connection, as a server that hangs up on idle clients."""
        for writer in self._writers:
            writer.close()
        self._writers.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target_port)
        self._writers += [writer, up_writer]
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Close the connection before the SMTP greeting."""
    writer.close()


async def never_greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept and say nothing until the client gives up."""
    await reader.read()


async def lost_after_handover_is_checked_not_resent(
    rt: Runtime, mail: OutgoingMail, transport: OutgoingTransport
) -> None:
    """Deliver ``mail`` through a server that drops the connection once it has the whole
    mail: the outcome is unknown and the claim stays; once the claim is older than a send can
    last, the redelivery checks it ("possibly sent") instead of sending the mail again."""
    with pytest.raises(OutcomeUnknown, match="may have been accepted"):
        await deliver(SenderDeps.of(rt), mail, transport)
    entry = await rt.store.outbox.get(mail_id=mail.mail_id)
    assert entry is not None and entry.sending_since is not None  # the claim stays
    old = utcnow() - timedelta(hours=1)
    await rt.store.db["outbox"].update_one({"_id": mail.mail_id}, {"$set": {"sending_since": old}})
    with pytest.raises(Permanent, match="possibly sent"):
        await deliver(SenderDeps.of(rt), mail, transport)  # the redelivery checks it
