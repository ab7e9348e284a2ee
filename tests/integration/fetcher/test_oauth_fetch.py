"""XOAUTH2 on IMAP and POP3 against Dovecot's oauth2 passdb, with tokens from msal through the
local https issuer: every TLS variant fetches; a wrong secret or a refused token is a
Permanent error without secrets in it; OAuth 2.0 without TLS is refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from deploy.local.servers import Dovecot, OAuthIssuer
from services.fetcher.deps import FetcherDeps
from services.fetcher.ingest import fetch_once
from shared.errors import Permanent
from shared.models.config import IncomingAccount
from shared.runtime import Runtime
from tests.integration.fetcher.conftest import MailboxMaker
from tests.integration.fetcher.helpers import account, announced, append, tricky_mail

pytestmark = pytest.mark.integration


def oauth_account(
    dovecot: Dovecot, issuer: OAuthIssuer, client: str, secret: str, **fields: object
) -> IncomingAccount:
    return account(
        dovecot,
        "bob",
        auth="oauth2",
        password=None,
        client_id=client,
        client_secret=secret,
        authority=issuer.authority(),
        scope="https://outlook.office365.com/.default",
        oauth_ca_file=str(issuer.ca_file),
        **fields,
    )


@pytest.mark.parametrize(
    ("protocol", "security"),
    [("IMAPS", "auto"), ("IMAP", "STARTTLS"), ("POP3S", "auto"), ("POP3", "auto")],
)
async def test_xoauth2_fetches_over_every_tls_variant(
    rt: Runtime,
    dovecot: Dovecot,
    oauth_issuer: OAuthIssuer,
    open_mailbox: MailboxMaker,
    protocol: str,
    security: str,
) -> None:
    dovecot.reset_mailbox("bob")
    append(dovecot, "bob", tricky_mail(1))
    oauth_issuer.add_client("fetch-app", "fetch-secret-123", "bob")
    acc = oauth_account(
        dovecot, oauth_issuer, "fetch-app", "fetch-secret-123", protocol=protocol, security=security
    )
    mailbox = open_mailbox(acc)
    assert await fetch_once(FetcherDeps.of(rt), acc, mailbox) == 1
    assert len(await announced(rt)) == 1


@pytest.mark.parametrize("protocol", ["IMAPS", "POP3S"])
async def test_a_wrong_client_secret_is_permanent_and_secret_free(
    dovecot: Dovecot, oauth_issuer: OAuthIssuer, open_mailbox: MailboxMaker, protocol: str
) -> None:
    oauth_issuer.add_client("wrong-app", "the-right-one", "bob")
    acc = oauth_account(dovecot, oauth_issuer, "wrong-app", "not-it-secret", protocol=protocol)
    with pytest.raises(Permanent, match="invalid_client") as info:
        await open_mailbox(acc).connect()
    assert "not-it-secret" not in str(info.value)


@pytest.mark.parametrize("protocol", ["IMAPS", "POP3S"])
async def test_a_token_for_another_user_is_refused_as_a_login(
    dovecot: Dovecot, oauth_issuer: OAuthIssuer, open_mailbox: MailboxMaker, protocol: str
) -> None:
    oauth_issuer.add_client("alice-app", "alice-secret-1", "alice")  # tokens log in alice
    acc = oauth_account(dovecot, oauth_issuer, "alice-app", "alice-secret-1", protocol=protocol)
    with pytest.raises(Permanent, match="login refused for bob@") as info:
        await open_mailbox(acc, timeout=10).connect()
    assert "alice-secret-1" not in str(info.value)


def test_oauth2_without_tls_is_refused(dovecot: Dovecot, oauth_issuer: OAuthIssuer) -> None:
    with pytest.raises(ValidationError, match="only sent over TLS"):
        oauth_account(dovecot, oauth_issuer, "a", "s", protocol="IMAP", security="none")
