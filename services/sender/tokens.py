"""The OAuth 2.0 token providers of outgoing connections, shared by the transports (SMTP,
Graph, JMAP): one per named credential and user, or per OAuth client, so tokens are reused
across mails and sessions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from services.sender.smtp import token_provider
from shared.auth import NamedTokenProvider, TokenProvider
from shared.errors import Permanent
from shared.models.config import OutgoingConnection
from shared.store.credentials import CredentialRepo


class TokenProviders:
    """The token providers handed out so far, by named credential or OAuth client."""

    def __init__(
        self,
        credentials: Callable[[], CredentialRepo] | None = None,
        on_refused: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        """``credentials`` reads named credentials; ``on_refused`` hears of a credential
        whose issuer refused a token."""
        self._credentials = credentials
        self._on_refused = on_refused
        self._providers: dict[tuple[str | None, ...], TokenProvider] = {}

    def provider(self, conn: OutgoingConnection, *, scope: str | None = None) -> TokenProvider:
        """The provider of an ``auth: oauth2`` connection: its named credential's, or its
        client's asking for ``scope`` (default: the connection's)."""
        if conn.credential is not None:
            if self._credentials is None:
                raise Permanent(f"credential {conn.credential!r} cannot be read: no store")
            named = ("credential", conn.credential, conn.username)
            if named not in self._providers:
                self._providers[named] = NamedTokenProvider(
                    self._credentials(),
                    conn.credential,
                    user=conn.username or "",
                    on_refused=self._on_refused,
                )
            return self._providers[named]
        secret = conn.client_secret.get_secret_value() if conn.client_secret else None
        # The key holds the secret: it stays in this process's memory only, never logged.
        key = (conn.client_id, secret, conn.authority, scope or conn.scope, conn.oauth_ca_file)
        if key not in self._providers:
            self._providers[key] = token_provider(conn, scope=scope)
        return self._providers[key]
