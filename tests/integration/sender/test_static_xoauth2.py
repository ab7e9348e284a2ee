"""A static credential over SASL XOAUTH2 on real servers: Dovecot (IMAP) and Postfix (SMTP
through Dovecot SASL) take a token the server side knows (Dovecot checks it at the local
issuer's introspection endpoint, which here stands for the mail server's own token store).
The token is sent as it is; once the server no longer knows it, the refused login marks the
credential failing with the server's text. No token appears in the logs, including the IMAP
protocol trace (``tests.secret_scan``)."""

from __future__ import annotations

import time
from email.message import EmailMessage

import pytest

from deploy.local.oauth_issuer import OAuthIssuer
from deploy.local.postfix import Postfix
from deploy.local.servers import Dovecot, SmtpSink
from services.config.credentials import add_credential, change_credential
from services.fetcher.deps import FetcherDeps
from services.fetcher.health import record_round
from services.sender.pool import AiosmtplibTransport
from services.sender.tokens import TokenProviders
from shared.auth import AuthFailed
from shared.errors import Transient
from shared.mailbox import open_mailbox
from shared.runtime import Runtime
from tests.integration.sender.test_oauth_credentials import imap_account, login_everywhere
from tests.secret_scan import SCAN

pytestmark = pytest.mark.integration

STATIC = SCAN.secret("a static API token", "static-xoauth2-token-0123456789abcdef")
UNKNOWN = SCAN.secret("a static API token", "static-xoauth2-token-unknown-to-server")


async def test_a_static_token_signs_in_by_xoauth2_until_the_server_forgets_it(
    rt: Runtime,
    oauth_issuer: OAuthIssuer,
    dovecot: Dovecot,
    postfix: Postfix,
    smtp_sink: SmtpSink,
) -> None:
    oauth_issuer.tokens[STATIC] = ("bob", time.time() + 3600)
    fields = {"name": "own-token", "provider": "static", "token": STATIC}
    await add_credential(rt, fields=fields, who="test")
    issued = oauth_issuer.issued

    await login_everywhere(rt, dovecot, postfix, smtp_sink, "own-token")
    assert oauth_issuer.issued == issued  # nothing was asked of an issuer
    state = await rt.credentials.state(name="own-token")
    assert state.last_login_at is not None and state.consent == "not_needed"
    assert state.token_expires_at is None

    del oauth_issuer.tokens[STATIC]  # revoked at the server
    account = imap_account(dovecot, "own-token")
    mailbox = open_mailbox(account, timeout=10, credentials=rt.credentials)
    try:
        with pytest.raises(AuthFailed) as refused:
            await mailbox.connect()
        await record_round(FetcherDeps.of(rt), account.name, mailbox, refused.value, 1)
    finally:
        await mailbox.close()
    text = str(refused.value)
    assert "bob" in text and STATIC not in text
    state = await rt.credentials.state(name="own-token")
    assert state.consent == "failing" and state.last_error == text

    # A new token clears it; Postfix refusing that one (unknown to the server) marks it again.
    await change_credential(rt, name="own-token", fields={"token": UNKNOWN}, who="test")
    assert (await rt.credentials.state(name="own-token")).consent == "not_needed"
    outgoing = rt.config.outgoing
    assert outgoing is not None and outgoing.credential == "own-token"
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "bob@example.org", "x@example.org", "x"
    transport = AiosmtplibTransport(TokenProviders(credentials=lambda: rt.credentials))
    try:
        with pytest.raises(Transient, match=r"refused the token \(XOAUTH2\)") as deferred:
            await transport.send(message, outgoing)
    finally:
        await transport.close()
    state = await rt.credentials.state(name="own-token")
    assert state.consent == "failing" and state.last_error == str(deferred.value)
    assert UNKNOWN not in str(deferred.value)
