"""Sending through Microsoft Graph: ``POST /users/{mailbox}/sendMail`` with the MIME message
(``Content-Type: text/plain``, the message base64-encoded, as "Send Outlook messages in MIME
format" on Microsoft Learn describes), so every header Mailroom sets (Message-ID,
In-Reply-To, References, Auto-Submitted) reaches the recipients as built. The mailbox is the
connection's ``graph_mailbox`` (a shared mailbox the app may send as) or its ``username``.

Graph answers 202 for the whole message and names no recipient: every recipient counts as
accepted, the reply recording Graph's ``request-id`` (what Microsoft support asks for).

Graph's answer                          → result
├── 202 Accepted                        → reply ``202 Accepted request-id <id>``, no refusals
├── 400 ErrorInvalidRecipients          → every recipient refused, permanent (550)
├── 429, 5xx                            → Transient (RetryLater with Graph's Retry-After)
├── 401 (after one new token)           → AuthFailed
├── 403, other 4xx                      → Permanent (the app lacks Mail.Send, or may not
│                                         send as this mailbox; the MIME was refused)
├── no token, no connection (DNS, TLS,  → Transient: nothing was sent
│   refused, connect timeout)
└── connection lost or timed out after  → OutcomeUnknown: Graph may have accepted the mail,
    the sendMail request left             so it is not sent again on a guess (``inflight``)

Recipients outside To/Cc (Bcc) ride in a Bcc header of the copy sent: Graph takes the
recipients from the MIME headers and strips Bcc before delivery. Graph cannot leave out a
To/Cc recipient, so a send to fewer recipients than the headers name is refused.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
from collections.abc import Sequence
from email.message import EmailMessage

from services.sender.compose import envelope_recipients, wire_bytes
from services.sender.tokens import TokenProviders
from services.sender.transport import Refusal, SendResult, Starting
from services.sender.transports.inflight import maybe_sent
from shared.auth import TokenProvider
from shared.errors import Permanent
from shared.mailbox.graph.client import GraphClient, Refused
from shared.models.config import GRAPH_SCOPE, OutgoingConnection

REFUSED = 550
"""The SMTP code recorded for recipients Graph refused (it gives none)."""
_Key = tuple[str | None, ...]


class GraphTransport:
    """``sendMail`` with the MIME body; one HTTPS client per Graph URL, mailbox and token
    source, reused across mails."""

    def __init__(self, tokens: TokenProviders | None = None) -> None:
        """``tokens`` signs in with OAuth 2.0 (default: clients only, no named credentials)."""
        self._clients: dict[_Key, GraphClient] = {}
        self._providers = TokenProviders() if tokens is None else tokens

    async def send(
        self,
        message: EmailMessage,
        connection: OutgoingConnection,
        recipients: Sequence[str] | None = None,
        *,
        starting: Starting | None = None,
    ) -> SendResult:
        """Send ``message`` through ``connection``'s mailbox; see the module for the result."""
        client = self._client(connection)
        visible = envelope_recipients(message)
        wanted = list(recipients) if recipients is not None else visible
        seen = {a.lower() for a in visible}
        left_out = seen - {a.lower() for a in wanted}
        if left_out:
            raise Permanent(
                f"{client.where}: Graph sends to every To/Cc recipient of the message and "
                f"cannot leave out {', '.join(sorted(left_out))}"
            )
        body = _mime(message, [a for a in wanted if a.lower() not in seen])
        if starting is not None:
            await starting()
        try:
            with maybe_sent("the sendMail request"):
                response = await client.request(
                    "POST",
                    client.url("/sendMail"),
                    headers={"Content-Type": "text/plain"},
                    content=body,
                )
        except Refused as exc:
            if exc.code != "ErrorInvalidRecipients":
                raise
            return SendResult(reply=None, refused={a: Refusal(REFUSED, str(exc)) for a in wanted})
        return SendResult(reply=f"202 Accepted request-id {response.headers.get('request-id')}")

    async def check(self, connection: OutgoingConnection, *, sender: str | None) -> list[str]:
        """Obtain a Graph token and read its granted permissions. Graph documents no request
        that proves ``sendMail`` rights without sending (reading the mailbox needs Mail.Read,
        which a send-only app lacks), so the token's ``roles`` (app permissions) or ``scp``
        (delegated) claim is read when it is a JWT, as Entra ID issues them; an opaque
        token leaves Mail.Send and the application access policy to a real send."""
        client = self._client(connection)
        provider = self._provider(connection)
        granted = token_permissions(await provider.token())
        steps = [f"OAuth 2.0 token for {client.where} obtained"]
        if granted is None:
            steps.append(
                "the token is opaque: Mail.Send and the mailbox's application access policy "
                "are proven only by sending (Test Account sends a real mail)"
            )
        elif not {"Mail.Send", "Mail.Send.Shared"} & granted:
            raise Permanent(
                f"{client.where}: the token grants no Mail.Send (it grants "
                f"{', '.join(sorted(granted)) or 'nothing'}): grant the app the Microsoft "
                "Graph permission Mail.Send and an admin consent"
            )
        else:
            steps.append("the token grants Mail.Send")
        return steps

    async def close(self) -> None:
        """Close every HTTPS client."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()

    def _client(self, conn: OutgoingConnection) -> GraphClient:
        provider = self._provider(conn)
        mailbox = conn.graph_mailbox or conn.username or ""
        # The provider by identity: one per credential or client (its key holds the secret).
        key = (conn.graph_url, mailbox, str(conn.verify_tls), conn.ca_file, str(id(provider)))
        if key not in self._clients:
            self._clients[key] = GraphClient(
                conn.graph_url,
                mailbox,
                tokens=provider,
                timeout=conn.send_timeout_ms / 1000,
                verify_tls=conn.verify_tls,
                ca_file=conn.ca_file,
            )
        return self._clients[key]

    def _provider(self, conn: OutgoingConnection) -> TokenProvider:
        if conn.auth != "oauth2":
            raise Permanent("Microsoft Graph sends with OAuth 2.0 only: set auth oauth2")
        # Graph's own scope whatever the connection's says: credentials taken from an IMAP
        # account carry Exchange's (outlook.office365.com) scope.
        return self._providers.provider(conn, scope=GRAPH_SCOPE)


def token_permissions(token: str) -> set[str] | None:
    """The permissions a JWT access token grants (``roles`` and ``scp`` claims), or None
    for an opaque token. Only read, never verified: Graph checks it, this only reports."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(claims, dict) or not ({"roles", "scp"} & claims.keys()):
        return None
    roles = claims.get("roles") or []
    scopes = str(claims.get("scp") or "").split()
    return {str(r) for r in (roles if isinstance(roles, list) else [])} | set(scopes)


def _mime(message: EmailMessage, hidden: list[str]) -> bytes:
    """The base64 MIME body; ``hidden`` recipients in a Bcc header of a copy."""
    if hidden:
        message = copy.deepcopy(message)  # a shallow copy shares the header list
        del message["Bcc"]
        message["Bcc"] = ", ".join(hidden)
    return base64.b64encode(wire_bytes(message))
