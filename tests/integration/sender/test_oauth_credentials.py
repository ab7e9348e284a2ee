"""Named credentials end to end against the local issuer, real Dovecot (IMAP XOAUTH2) and real
Postfix (SMTP XOAUTH2 through Dovecot SASL): consent → token → IMAP and SMTP login → expiry →
refresh → revocation → the credential marked failing with the issuer's own error text. Each
delegated flow (Microsoft authorization code with PKCE, Microsoft device code, Google
authorization code) and Google's service account (JWT bearer grant) is proven this way. No
token or secret of these flows appears in the API's answers, the CLI's output or the logs
(``tests.secret_scan`` checks them against the values registered here)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import ssl
import sys
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from deploy.local.oauth_grants import app_certificate, service_account_key
from deploy.local.oauth_issuer import OAuthIssuer
from deploy.local.postfix import Postfix
from deploy.local.servers import Dovecot, SmtpSink
from services.fetcher.deps import FetcherDeps
from services.fetcher.ingest import fetch_once
from services.sender.deliver import deliver
from services.sender.deps import SenderDeps
from services.sender.pool import AiosmtplibTransport
from services.sender.tokens import TokenProviders
from shared.auth import AuthFailed, NamedTokenProvider
from shared.mailbox import open_mailbox
from shared.models.config import IncomingAccount
from shared.runtime import Runtime
from shared.service import Stack
from tests.integration.fetcher.helpers import account, append, tricky_mail
from tests.integration.sender.helpers import outgoing_mail
from tests.integration.sender.test_sender_postfix import base, configure, relayed
from tests.secret_scan import SCAN
from tests.support_cli import mailroom, settings_cli_env

pytestmark = pytest.mark.integration

CLIENT_SECRET = SCAN.secret("a credential's client secret", "cred-client-secret-0123456789")
CALLBACK = "http://config/oauth/callback"


def register_tokens(issuer: OAuthIssuer) -> None:
    """Every access and refresh token the issuer handed out is a secret from now on."""
    for token in list(issuer.tokens):
        SCAN.secret("an OAuth 2.0 access token", token)
    for refresh in list(issuer.grants.refresh):
        SCAN.secret("an OAuth 2.0 refresh token", refresh)


def imap_account(dovecot: Dovecot, credential: str) -> IncomingAccount:
    # Traced: the protocol trace in the logs must not show a token either.
    return account(
        dovecot,
        "bob",
        protocol="IMAPS",
        auth="oauth2",
        password=None,
        credential=credential,
        debug="yes",
    )


async def browser_consent(api: httpx.AsyncClient, issuer: OAuthIssuer, url: str) -> None:
    """What the administrator's browser does: open the URL, sign in (the issuer consents as
    the app's user), follow the redirect to the config service's callback."""
    trust = ssl.create_default_context(cafile=str(issuer.ca_file))
    async with httpx.AsyncClient(verify=trust) as browser:
        answer = await browser.get(url)
    if answer.status_code == 200:  # response_mode=form_post: the page posts a form
        assert re.search(r'action="([^"]+)"', answer.text)[1] == CALLBACK  # type: ignore[index]
        fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', answer.text))
        done = await api.post("/oauth/callback", data=fields)
    else:
        assert answer.status_code == 302, answer.text
        redirect = urlsplit(answer.headers["location"])
        assert f"{redirect.scheme}://{redirect.netloc}{redirect.path}" == CALLBACK
        done = await api.get("/oauth/callback", params=dict(parse_qsl(redirect.query)))
    assert done.status_code == 200, done.text
    assert done.json()["consent"] == "granted"


async def login_everywhere(
    rt: Runtime, dovecot: Dovecot, postfix: Postfix, smtp_sink: SmtpSink, credential: str
) -> None:
    """An IMAP fetch and an SMTP send, both signing in with ``credential`` as bob."""
    dovecot.reset_mailbox("bob")
    append(dovecot, "bob", tricky_mail(1))
    acc = imap_account(dovecot, credential)
    mailbox = open_mailbox(acc, timeout=10, credentials=rt.credentials)
    try:
        assert await fetch_once(FetcherDeps.of(rt), acc, mailbox) == 1
    finally:
        await mailbox.close()
    await configure(
        rt, {**base(postfix), "username": "bob", "auth": "oauth2", "credential": credential}
    )
    transport = AiosmtplibTransport(TokenProviders(lambda: rt.credentials))
    try:
        entry = await deliver(
            SenderDeps.of(rt), outgoing_mail(subject=f"XOAUTH2 via {credential}"), transport
        )
    finally:
        await transport.close()
    assert entry.status == "sent", entry
    assert (await relayed(smtp_sink, entry.message_id))["Subject"] == f"XOAUTH2 via {credential}"


async def expiry_refresh_revocation(
    rt: Runtime, issuer: OAuthIssuer, dovecot: Dovecot, name: str, revoked_text: str
) -> None:
    """Tokens expire at the issuer: a fresh provider refreshes and logs in again; after the
    user's grant is revoked the refresh fails and the credential says why."""
    issuer.expire_tokens()
    issued = issuer.issued
    acc = imap_account(dovecot, name)
    mailbox = open_mailbox(acc, timeout=10, credentials=rt.credentials)
    try:
        await mailbox.connect()  # a new token came from the refresh token
    finally:
        await mailbox.close()
    assert issuer.issued > issued
    register_tokens(issuer)

    issuer.revoke_user("bob")
    provider = NamedTokenProvider(rt.credentials, name, user="bob")
    with pytest.raises(AuthFailed, match=re.escape(revoked_text)):
        await provider.token()
    state = await rt.credentials.state(name=name)
    assert state.last_error is not None and revoked_text in state.last_error
    assert state.consent == "failing"


async def several_instances_share_the_refresh_token(
    rt: Runtime, issuer: OAuthIssuer, name: str
) -> None:
    """Three fetcher instances refresh at once: each write of the cache is checked against
    the version it read, so none overwrites a newer one, and all get a token that works."""
    _, before = await rt.credentials.cache(name=name)
    providers = [NamedTokenProvider(rt.credentials, name, user="bob") for _ in range(3)]
    tokens = await asyncio.gather(*(p.token() for p in providers))
    register_tokens(issuer)
    assert all(issuer.introspect(t)["active"] for t in tokens)
    cache, after = await rt.credentials.cache(name=name)
    assert cache is not None and after > before
    # A write over a version that is no longer current is refused, not applied.
    stale = await rt.credentials.save_cache(name=name, cache="{}", version=before)
    assert stale is None
    assert (await rt.credentials.cache(name=name))[0] == cache


async def test_microsoft_authorization_code_with_pkce_end_to_end(
    rt: Runtime,
    api: httpx.AsyncClient,
    oauth_issuer: OAuthIssuer,
    dovecot: Dovecot,
    postfix: Postfix,
    smtp_sink: SmtpSink,
) -> None:
    oauth_issuer.add_client("m365-web", CLIENT_SECRET, "bob", ttl=120)
    created = await api.post(
        "/credentials",
        json={
            "name": "m365",
            "provider": "microsoft",
            "flow": "authorization_code",
            "client_id": "m365-web",
            "client_secret": CLIENT_SECRET,
            "client_secret_expires": "2027-06-30",
            "authority": oauth_issuer.authority(),
            "redirect_uri": CALLBACK,
            "ca_file": str(oauth_issuer.ca_file),
        },
    )
    assert created.status_code == 201, created.text
    shown = created.json()
    assert shown["credential"]["client_secret_set"] is True
    assert "client_secret" not in shown["credential"]
    assert shown["state"]["consent"] == "pending"

    started = await api.post("/credentials/m365/authorize")
    assert started.status_code == 200, started.text
    url = started.json()["url"]
    query = dict(parse_qsl(urlsplit(url).query))
    assert query["code_challenge_method"] == "S256" and query["code_challenge"]
    assert "IMAP.AccessAsUser.All" in query["scope"] and "offline_access" in query["scope"]
    await browser_consent(api, oauth_issuer, url)
    register_tokens(oauth_issuer)
    # The redirect is redeemed once: replaying it finds no waiting consent.
    again = await api.get("/oauth/callback", params={"state": query["state"], "code": "x"})
    assert again.status_code == 404

    await login_everywhere(rt, dovecot, postfix, smtp_sink, "m365")
    register_tokens(oauth_issuer)
    state = (await api.get("/credentials/m365")).json()["state"]
    assert state["consented_by"] == "bob" and state["last_login_at"] is not None
    assert state["token_expires_at"] is not None

    await several_instances_share_the_refresh_token(rt, oauth_issuer, "m365")
    await expiry_refresh_revocation(rt, oauth_issuer, dovecot, "m365", "AADSTS50173")
    listed = (await api.get("/credentials")).json()
    assert [c["state"]["consent"] for c in listed] == ["failing"]
    assert "AADSTS50173" in listed[0]["state"]["last_error"]


async def test_microsoft_device_code_from_the_cli(
    rt: Runtime, oauth_issuer: OAuthIssuer, dovecot: Dovecot, postfix: Postfix, smtp_sink: SmtpSink
) -> None:
    oauth_issuer.add_client("m365-device", None, "bob", ttl=120)  # a public client
    env = settings_cli_env(rt.settings)
    add = await asyncio.to_thread(
        mailroom,
        *("credentials", "add", "m365dev", "--flow", "device_code"),
        *("--client-id", "m365-device", "--authority", oauth_issuer.authority()),
        *("--ca-file", str(oauth_issuer.ca_file)),
        env=env,
    )
    assert add.returncode == 0, add.stderr + add.stdout
    cli = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("mailroom")),
        *("credentials", "authorize", "m365dev"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **env, "COLUMNS": "200"},
    )
    assert cli.stdout is not None
    line = (await asyncio.wait_for(cli.stdout.readline(), 30)).decode()
    code = re.search(r"enter the code (\w+)", line)
    assert code, line
    oauth_issuer.approve_device(code.group(1))  # the user types the code and signs in
    out, err = await asyncio.wait_for(cli.communicate(), 60)
    register_tokens(oauth_issuer)
    SCAN.record(
        "the output of `mailroom credentials authorize`", line + out.decode() + err.decode()
    )
    assert cli.returncode == 0, err.decode()
    assert "consent granted by bob" in out.decode()

    await login_everywhere(rt, dovecot, postfix, smtp_sink, "m365dev")
    register_tokens(oauth_issuer)
    await expiry_refresh_revocation(rt, oauth_issuer, dovecot, "m365dev", "AADSTS50173")


async def test_microsoft_app_only_with_a_certificate(
    rt: Runtime,
    api: httpx.AsyncClient,
    oauth_issuer: OAuthIssuer,
    dovecot: Dovecot,
    postfix: Postfix,
    smtp_sink: SmtpSink,
) -> None:
    pem, cert = app_certificate(days=10)
    key = pem.split("-----END PRIVATE KEY-----")[0]
    SCAN.secret("a certificate credential's private key", key.splitlines()[5])
    oauth_issuer.add_client("m365-cert", None, "bob", certificate=cert)
    created = await api.post(
        "/credentials",
        json={
            "name": "m365cert",
            "client_id": "m365-cert",
            "certificate": pem,
            "authority": oauth_issuer.authority(),
            "ca_file": str(oauth_issuer.ca_file),
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["credential"]["certificate_set"] is True
    await login_everywhere(rt, dovecot, postfix, smtp_sink, "m365cert")
    register_tokens(oauth_issuer)

    # Ten days left: the health says so (the warning starts 14 days before).
    health = {c["name"]: c for c in (await api.get("/healthz/credentials")).json()}
    assert health["m365cert"]["status"] == "warning"
    assert [c["kind"] for c in health["m365cert"]["conditions"]] == ["certificate_expiring"]

    # Another certificate in the app registration: the assertion is refused with Entra's text.
    _, other = app_certificate(days=365)
    oauth_issuer.add_client("m365-cert", None, "bob", certificate=other)
    provider = NamedTokenProvider(rt.credentials, "m365cert", user="bob")
    with pytest.raises(AuthFailed, match="AADSTS700027"):
        await provider.token()


async def test_google_authorization_code_end_to_end(
    rt: Runtime,
    api: httpx.AsyncClient,
    oauth_issuer: OAuthIssuer,
    dovecot: Dovecot,
    postfix: Postfix,
    smtp_sink: SmtpSink,
) -> None:
    oauth_issuer.add_client("gmail-web", CLIENT_SECRET, "bob", ttl=120)
    created = await api.post(
        "/credentials",
        json={
            "name": "gmail",
            "provider": "google",
            "flow": "authorization_code",
            "client_id": "gmail-web",
            "client_secret": CLIENT_SECRET,
            "authority": oauth_issuer.google_token_uri,
            "redirect_uri": CALLBACK,
            "ca_file": str(oauth_issuer.ca_file),
        },
    )
    assert created.status_code == 201, created.text
    url = (await api.post("/credentials/gmail/authorize")).json()["url"]
    query = dict(parse_qsl(urlsplit(url).query))
    assert query["scope"] == "https://mail.google.com/" and query["access_type"] == "offline"
    await browser_consent(api, oauth_issuer, url)
    register_tokens(oauth_issuer)

    await login_everywhere(rt, dovecot, postfix, smtp_sink, "gmail")
    register_tokens(oauth_issuer)
    await expiry_refresh_revocation(
        rt, oauth_issuer, dovecot, "gmail", "invalid_grant: Token has been expired or revoked."
    )


async def test_google_service_account_with_domain_wide_delegation(
    rt: Runtime,
    config_stack: Stack,
    api: httpx.AsyncClient,
    oauth_issuer: OAuthIssuer,
    dovecot: Dovecot,
    postfix: Postfix,
    smtp_sink: SmtpSink,
) -> None:
    key, public = service_account_key(
        "mailroom@proj.iam.gserviceaccount.com", oauth_issuer.google_token_uri
    )
    SCAN.secret("a Google service account key", json.loads(key)["private_key"])
    oauth_issuer.grants.add_service_account(
        "mailroom@proj.iam.gserviceaccount.com", public, frozenset({"bob"})
    )
    created = await api.post(
        "/credentials",
        json={
            "name": "gsa",
            "provider": "google",
            "flow": "service_account",
            "service_account_key": key,
            "ca_file": str(oauth_issuer.ca_file),
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["credential"]["service_account_key_set"] is True
    assert created.json()["state"]["consent"] == "not_needed"

    await login_everywhere(rt, dovecot, postfix, smtp_sink, "gsa")
    register_tokens(oauth_issuer)
    # Test connection (API) of an account and of the outgoing connection naming it.
    box = {
        "name": "gsa-box",
        "protocol": "IMAPS",
        "host": "127.0.0.1",
        "port": dovecot.imaps_port,
        "username": "bob",
        "ca_file": str(dovecot.cert_file),
        "auth": "oauth2",
        "credential": "gsa",
    }
    assert (await api.post("/accounts", json=box)).status_code == 201
    tested = (await api.post("/accounts/gsa-box/test")).json()
    assert tested["ok"] is True, tested
    await config_stack.rt.reload_config()  # the outgoing connection login_everywhere stored
    smtp = (await api.post("/outgoing/test", json={})).json()
    assert smtp["ok"] is True, smtp
    register_tokens(oauth_issuer)
    # A user outside the delegation is refused with Google's text.
    other = NamedTokenProvider(rt.credentials, "gsa", user="alice")
    with pytest.raises(AuthFailed, match="unauthorized_client"):
        await other.token()
    # Domain-wide delegation withdrawn for bob: the next token fails the same way.
    oauth_issuer.grants.add_service_account(
        "mailroom@proj.iam.gserviceaccount.com", public, frozenset()
    )
    await expiry_refresh_revocation_service(rt, "gsa")


async def expiry_refresh_revocation_service(rt: Runtime, name: str) -> None:
    provider = NamedTokenProvider(rt.credentials, name, user="bob")
    with pytest.raises(AuthFailed, match="unauthorized_client: Client is unauthorized"):
        await provider.token()
    state = await rt.credentials.state(name=name)
    assert state.last_error is not None and "unauthorized_client" in state.last_error
