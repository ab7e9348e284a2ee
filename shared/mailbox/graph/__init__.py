"""Microsoft Graph: a user's or a shared Microsoft 365 mailbox as a ``Mailbox`` (see
``mailbox``), and the HTTPS client the Graph sender transport shares (``client``)."""

from __future__ import annotations

from shared.auth import MsalTokenProvider, OAuthCredentials, TokenProvider
from shared.errors import Permanent
from shared.mailbox.base import Mailbox
from shared.mailbox.graph.client import GraphClient, RetryLater
from shared.mailbox.graph.mailbox import GraphMailbox
from shared.models.config import GRAPH_SCOPE, IncomingAccount

__all__ = ["GraphClient", "GraphMailbox", "RetryLater", "open_graph_mailbox"]


def open_graph_mailbox(
    account: IncomingAccount, *, timeout: float, tokens: TokenProvider | None
) -> Mailbox:
    """The account's Graph mailbox; ``tokens`` None: an msal client-credentials provider
    from the account's own client fields (a named credential's provider is the caller's)."""
    if tokens is None:
        if account.credential is not None or account.client_id is None:
            raise Permanent(
                f"account {account.name}: credential {account.credential!r} needs a token "
                "provider, and none was given"
            )
        assert account.client_secret is not None and account.authority is not None
        tokens = MsalTokenProvider(
            OAuthCredentials(
                client_id=account.client_id,
                client_secret=account.client_secret.get_secret_value(),
                authority=account.authority,
                scope=account.scope or GRAPH_SCOPE,
                ca_file=account.oauth_ca_file,
                timeout=timeout,
            )
        )
    return GraphMailbox(account, timeout=timeout, tokens=tokens)
