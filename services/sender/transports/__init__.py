"""Outgoing transports beside SMTP (``services.sender.pool``), and the one that picks the
transport by the connection's ``protocol``."""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage

from services.sender.smtp import SmtpReply, SmtpTransport, Starting
from shared.models.config import OutgoingConnection


class ProtocolTransport:
    """Sends through ``smtp`` or ``graph`` as each connection's ``protocol`` says (the global
    connection and an account's own may differ)."""

    def __init__(self, *, smtp: SmtpTransport, graph: SmtpTransport) -> None:
        self._by_protocol = {"smtp": smtp, "graph": graph}

    async def send(
        self,
        message: EmailMessage,
        connection: OutgoingConnection,
        recipients: Sequence[str] | None = None,
        *,
        starting: Starting | None = None,
    ) -> SmtpReply:
        """Send ``message`` through the connection's transport."""
        transport = self._by_protocol[connection.protocol]
        return await transport.send(message, connection, recipients, starting=starting)

    async def close(self) -> None:
        """Close every transport."""
        for transport in self._by_protocol.values():
            await transport.close()
