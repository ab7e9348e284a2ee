"""Mailbox adapters behind one async protocol."""

from collections.abc import Awaitable, Callable

from shared.auth import MsalTokenProvider, NamedTokenProvider, OAuthCredentials, TokenProvider
from shared.mailbox.base import (
    Disposal,
    FetchedMail,
    Guard,
    Listing,
    Mailbox,
    MailboxStatus,
    MessageRef,
    unguarded,
)
from shared.mailbox.imap import ImapMailbox
from shared.mailbox.pop3 import Pop3Mailbox
from shared.mailbox.registry import FACTORIES
from shared.models.config import IncomingAccount
from shared.store.credentials import CredentialRepo

__all__ = [
    "Disposal",
    "FetchedMail",
    "Guard",
    "ImapMailbox",
    "Listing",
    "Mailbox",
    "MailboxStatus",
    "MessageRef",
    "Pop3Mailbox",
    "open_mailbox",
    "token_provider",
    "unguarded",
]


def token_provider(
    account: IncomingAccount,
    *,
    timeout: float,
    credentials: CredentialRepo | None = None,
    on_refused: Callable[[str], Awaitable[None]] | None = None,
) -> TokenProvider | None:
    """The account's OAuth 2.0 token source, or None for Basic auth; an account naming a
    credential takes its tokens from ``credentials``."""
    if account.auth != "oauth2":
        return None
    if account.credential is not None:
        if credentials is None:
            raise ValueError(f"account {account.name} names a credential: give the store")
        return NamedTokenProvider(
            credentials, account.credential, user=account.username, on_refused=on_refused
        )
    assert account.client_id and account.client_secret and account.authority and account.scope
    client = OAuthCredentials(
        client_id=account.client_id,
        client_secret=account.client_secret.get_secret_value(),
        authority=account.authority,
        scope=account.scope,
        ca_file=account.oauth_ca_file,
        timeout=timeout,
    )
    return MsalTokenProvider(client)


def open_mailbox(
    account: IncomingAccount,
    *,
    timeout: float,
    tokens: TokenProvider | None = None,
    credentials: CredentialRepo | None = None,
    on_refused: Callable[[str], Awaitable[None]] | None = None,
) -> Mailbox:
    """The adapter registered for the account's protocol (not yet connected); ``tokens`` defaults to
    a new provider for an OAuth 2.0 account (from ``credentials`` when it names one)."""
    tokens = tokens or token_provider(
        account, timeout=timeout, credentials=credentials, on_refused=on_refused
    )
    return FACTORIES[account.protocol](account, timeout=timeout, tokens=tokens)
