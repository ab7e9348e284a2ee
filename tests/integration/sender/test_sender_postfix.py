"""The sender against a real MTA: Postfix with STARTTLS and SASL through Dovecot, relaying to
the sink. Basic AUTH, XOAUTH2 with a token from the local OAuth 2.0 issuer (msal's
client-credentials flow), and "the same credentials as incoming account X"."""

from __future__ import annotations

import json
from email.message import EmailMessage
from typing import Any

import pytest

from deploy.local.oauth_issuer import OAuthIssuer
from deploy.local.postfix import Postfix
from deploy.local.servers import SmtpSink
from services.sender.deliver import deliver
from services.sender.deps import SenderDeps
from services.sender.pool import AiosmtplibTransport
from shared.config_views import ACCOUNTS_MODULE, OUTGOING_KEY, OUTGOING_MODULE, seal_secrets
from shared.errors import Transient
from shared.runtime import Runtime
from tests.integration.sender.helpers import outgoing_mail, received
from tests.support import eventually
from tests.support_cli import mailroom, settings_cli_env

pytestmark = pytest.mark.integration

SCOPE = "https://outlook.office365.com/.default"


def base(postfix: Postfix) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": postfix.port,
        "security": "starttls",
        "ca_file": str(postfix.cert_file),
        "connect_timeout_ms": 10_000,
        "send_timeout_ms": 30_000,
    }


def oauth(issuer: OAuthIssuer, client: str, secret: str) -> dict[str, Any]:
    return {
        "auth": "oauth2",
        "client_id": client,
        "client_secret": secret,
        "authority": issuer.authority(),
        "scope": SCOPE,
        "oauth_ca_file": str(issuer.ca_file),
    }


async def configure(rt: Runtime, outgoing: dict[str, Any], **accounts: dict[str, Any]) -> None:
    for name, account in accounts.items():
        value = seal_secrets(account, rt.box)
        await rt.store.properties.put(module=ACCOUNTS_MODULE, key=name, value=value, who="t")
    value = seal_secrets(outgoing, rt.box)
    await rt.store.properties.put(module=OUTGOING_MODULE, key=OUTGOING_KEY, value=value, who="t")
    await rt.reload_config()


async def relayed(sink: SmtpSink, message_id: str) -> EmailMessage:
    async def probe() -> EmailMessage | None:
        copies = received(sink, message_id)
        return copies[0] if copies else None

    return await eventually(probe, what="the mail relayed by Postfix to the sink")


async def test_basic_auth_through_postfix_and_dovecot_sasl(
    rt: Runtime, postfix: Postfix, smtp_sink: SmtpSink, transport: AiosmtplibTransport
) -> None:
    await configure(rt, {**base(postfix), "username": "alice", "password": "alicepw"})

    entry = await deliver(SenderDeps.of(rt), outgoing_mail(subject="Via Postfix"), transport)

    assert entry.status == "sent" and entry.smtp_reply and entry.smtp_reply.startswith("250")
    copy = await relayed(smtp_sink, entry.message_id)
    assert copy["Subject"] == "Via Postfix"


async def test_xoauth2_with_a_token_from_the_issuer(
    rt: Runtime,
    postfix: Postfix,
    smtp_sink: SmtpSink,
    oauth_issuer: OAuthIssuer,
    transport: AiosmtplibTransport,
) -> None:
    oauth_issuer.add_client("smtp-app", "smtp-app-secret", "bob")
    await configure(
        rt,
        {**base(postfix), "username": "bob", **oauth(oauth_issuer, "smtp-app", "smtp-app-secret")},
    )
    issued = oauth_issuer.issued

    first = await deliver(SenderDeps.of(rt), outgoing_mail(subject="XOAUTH2 one"), transport)
    await transport.close()  # a new connection logs in again, with the cached token
    second = await deliver(SenderDeps.of(rt), outgoing_mail(subject="XOAUTH2 two"), transport)

    assert first.status == second.status == "sent"
    assert oauth_issuer.issued == issued + 1
    assert (await relayed(smtp_sink, second.message_id))["Subject"] == "XOAUTH2 two"


async def test_the_same_credentials_as_an_incoming_account(
    rt: Runtime,
    postfix: Postfix,
    smtp_sink: SmtpSink,
    oauth_issuer: OAuthIssuer,
    transport: AiosmtplibTransport,
) -> None:
    oauth_issuer.add_client("shared-app", "shared-secret", "alice")
    account = {
        "protocol": "IMAPS",
        "host": "127.0.0.1",
        "username": "alice",
        **oauth(oauth_issuer, "shared-app", "shared-secret"),
    }
    await configure(rt, {**base(postfix), "credentials_from": "support"}, support=account)

    entry = await deliver(
        SenderDeps.of(rt), outgoing_mail(subject="Borrowed credentials"), transport
    )

    assert entry.status == "sent"
    assert (await relayed(smtp_sink, entry.message_id))["Subject"] == "Borrowed credentials"


async def test_a_token_for_another_user_is_refused_and_retried_later(
    rt: Runtime, postfix: Postfix, oauth_issuer: OAuthIssuer, transport: AiosmtplibTransport
) -> None:
    oauth_issuer.add_client("bobs-app", "bobs-secret", "bob")
    await configure(
        rt, {**base(postfix), "username": "alice", **oauth(oauth_issuer, "bobs-app", "bobs-secret")}
    )

    with pytest.raises(Transient, match=r"refused the token \(XOAUTH2\) for user 'alice'"):
        await deliver(SenderDeps.of(rt), outgoing_mail(), transport)


def test_oauth2_set_and_tested_from_the_cli(
    rt: Runtime, postfix: Postfix, smtp_sink: SmtpSink, oauth_issuer: OAuthIssuer
) -> None:
    oauth_issuer.add_client("cli-app", "cli-app-secret-123", "bob")
    env = settings_cli_env(rt.settings)
    where = [
        "--host",
        "127.0.0.1",
        "--port",
        str(postfix.port),
        "--ca-file",
        str(postfix.cert_file),
    ]
    assert mailroom("outgoing", "set", *where, env=env).returncode == 0
    auth = mailroom(
        "outgoing",
        "auth",
        "--oauth2",
        "--username",
        "bob",
        "--client-id",
        "cli-app",
        "--client-secret-stdin",
        "--authority",
        oauth_issuer.authority(),
        "--scope",
        SCOPE,
        "--oauth-ca-file",
        str(oauth_issuer.ca_file),
        env=env,
        stdin="cli-app-secret-123\n",
    )
    assert auth.returncode == 0, auth.stdout + auth.stderr

    tested = mailroom("outgoing", "test", "--to", "ops@example.org", "--json", env=env)

    assert tested.returncode == 0, tested.stdout + tested.stderr
    report = json.loads(tested.stdout)
    assert "authenticated as bob with an OAuth 2.0 token (XOAUTH2)" in report["steps"]
    assert report["test_mail"].startswith("sent to ops@example.org: 250")
    assert "cli-app-secret-123" not in auth.stdout + tested.stdout + tested.stderr
