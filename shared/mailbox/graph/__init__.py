"""Microsoft Graph: a user's or a shared Microsoft 365 mailbox as a ``Mailbox`` (see
``mailbox``), and the HTTPS client the Graph sender transport shares (``client``)."""

from __future__ import annotations

from shared.auth import TokenProvider
from shared.errors import Permanent
from shared.mailbox.base import Mailbox
from shared.mailbox.graph.client import GraphClient, RetryLater
from shared.mailbox.graph.mailbox import GraphMailbox
from shared.models.config import IncomingAccount

__all__ = ["GraphClient", "GraphMailbox", "RetryLater", "open_graph_mailbox"]


def open_graph_mailbox(
    account: IncomingAccount, *, timeout: float, tokens: TokenProvider | None
) -> Mailbox:
    """The account's Graph mailbox; ``tokens`` None: an msal client-credentials provider
    from the account's own client fields (a named credential's provider is the caller's)."""
    if tokens is None:
        if account.credential is not None:
            raise Permanent(
                f"account {account.name}: credential {account.credential!r} needs a token "
                "provider, and none was given"
            )
        from shared.mailbox import token_provider  # the package imports this module

        tokens = token_provider(account, timeout=timeout)
        assert tokens is not None  # GRAPH signs in with OAuth 2.0 only (the model checks)
    return GraphMailbox(account, timeout=timeout, tokens=tokens)
