"""Which adapter sends a mail: the one registered for its outgoing connection's
``protocol``.

A new transport is one line in :data:`ADAPTERS` (and its value in
``shared.models.config.OutgoingProtocol``); :class:`Transports` opens each adapter on first
use and closes them all at the end, so a sender that never sends through Graph never builds
its client.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage

from services.sender.pool import AiosmtplibTransport
from services.sender.tokens import TokenProviders
from services.sender.transport import OutgoingTransport, SendResult, Starting
from services.sender.transports.graph import GraphTransport
from services.sender.transports.jmap import JmapTransport
from shared.models.config import OutgoingConnection, OutgoingProtocol
from shared.store.credentials import CredentialRepo


@dataclass(frozen=True)
class AdapterDeps:
    """What an adapter may need to sign in."""

    credentials: Callable[[], CredentialRepo] | None = None
    """Reads named OAuth 2.0 credentials."""
    on_refused: Callable[[str], Awaitable[None]] | None = None
    """Hears of a named credential whose issuer refused a token."""

    @functools.cached_property
    def tokens(self) -> TokenProviders:
        """The token providers every adapter signs in with: one named credential used over
        SMTP and JMAP has one provider, one token cache and one state record."""
        return TokenProviders(self.credentials, self.on_refused)


AdapterFactory = Callable[[AdapterDeps], OutgoingTransport]

ADAPTERS: dict[OutgoingProtocol, AdapterFactory] = {
    "smtp": lambda deps: AiosmtplibTransport(deps.tokens),
    "graph": lambda deps: GraphTransport(deps.tokens),
    "jmap": lambda deps: JmapTransport(deps.tokens),
}
"""One adapter per protocol; registering a transport is one line here."""


class Transports:
    """An ``OutgoingTransport`` that hands each mail to its connection's adapter."""

    def __init__(
        self, deps: AdapterDeps, adapters: dict[OutgoingProtocol, AdapterFactory] | None = None
    ) -> None:
        self._deps = deps
        self._factories = ADAPTERS if adapters is None else adapters
        self._open: dict[OutgoingProtocol, OutgoingTransport] = {}

    def adapter(self, protocol: OutgoingProtocol) -> OutgoingTransport:
        """The adapter for ``protocol``, opened on first use."""
        found = self._open.get(protocol)
        if found is None:
            found = self._open[protocol] = self._factories[protocol](self._deps)
        return found

    async def send(
        self,
        message: EmailMessage,
        connection: OutgoingConnection,
        recipients: Sequence[str] | None = None,
        *,
        starting: Starting | None = None,
    ) -> SendResult:
        """Send through the adapter of ``connection.protocol`` (see ``OutgoingTransport``)."""
        return await self.adapter(connection.protocol).send(
            message, connection, recipients, starting=starting
        )

    async def close(self) -> None:
        """Close every adapter opened."""
        opened, self._open = list(self._open.values()), {}
        await asyncio.gather(*(a.close() for a in opened))
