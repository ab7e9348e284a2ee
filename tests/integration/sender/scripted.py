"""A real aiosmtpd server, in the test's event loop, whose answers to RCPT and DATA follow a
script: ``451`` first and ``250`` later for one address, ``550`` for another, or no answer
to DATA at all (a server that hangs)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Received:
    """One accepted transaction: its envelope recipients and the message bytes."""

    rcpt_tos: list[str]
    content: bytes


@dataclass
class ScriptedHandler:
    """aiosmtpd handler answering RCPT from ``rcpt`` (address → replies, in order; 250 once
    a list is used up) and DATA with 250, or never when ``hang_data`` is set."""

    rcpt: dict[str, list[str]] = field(default_factory=dict)
    hang_data: bool = False
    received: list[Received] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        """The next scripted reply for ``address``; 250 records it as a recipient."""
        replies = self.rcpt.get(address) or []
        reply = replies.pop(0) if replies else "250 OK"
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Accept (and keep) the message, or hang until the test ends."""
        if self.hang_data:
            await self.release.wait()
            return "421 shutting down"
        self.received.append(Received(list(envelope.rcpt_tos), envelope.original_content or b""))
        return "250 OK stored"


class ScriptedServer:
    """Plain SMTP on 127.0.0.1 on a free port, answering as ``handler`` says."""

    def __init__(self, handler: ScriptedHandler) -> None:
        self.handler = handler
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen on a port the kernel picks."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self.handler, hostname="scripted.localhost"), "127.0.0.1", 0
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Release hanging handlers and stop listening."""
        self.handler.release.set()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
