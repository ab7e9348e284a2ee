"""MsalTokenProvider against the local https issuer, and Dovecot accepting its tokens."""

from __future__ import annotations

import base64
import imaplib
import socket
import ssl

import pytest

from deploy.local.servers import Dovecot, OAuthIssuer
from shared.auth import MsalTokenProvider, OAuthCredentials, xoauth2
from shared.errors import Permanent, Transient

pytestmark = pytest.mark.integration


def credentials(issuer: OAuthIssuer, client: str, secret: str) -> OAuthCredentials:
    return OAuthCredentials(
        client_id=client,
        client_secret=secret,
        authority=issuer.authority(),
        scope="https://outlook.office365.com/.default",
        ca_file=str(issuer.ca_file),
        timeout=10,
    )


class Clock:
    """A clock the test moves; msal keeps real time, which is what it should."""

    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_token_is_cached_refreshed_before_expiry_and_health_kept(
    oauth_issuer: OAuthIssuer,
) -> None:
    oauth_issuer.add_client("app-cache", "s3cret-cache", "alice", ttl=20)
    clock = Clock()
    creds = credentials(oauth_issuer, "app-cache", "s3cret-cache")
    provider = MsalTokenProvider(creds, clock=clock)
    assert provider.health.last_token_at is None and not provider.health.ok

    before = oauth_issuer.issued
    first = await provider.token()
    assert await provider.token() == first  # cached: no second request
    assert oauth_issuer.issued == before + 1
    assert oauth_issuer.introspect(first)["username"] == "alice"
    health = provider.health
    assert health.ok and health.expires_at is not None and health.last_token_at is not None
    assert (health.expires_at - health.last_token_at).total_seconds() == pytest.approx(20)

    clock.now += 11  # past half the lifetime: renewed before it expires
    second = await provider.token()
    assert second != first and oauth_issuer.issued == before + 2

    provider.invalidate()
    assert await provider.token() != second


async def test_a_wrong_secret_is_permanent_and_recorded_without_the_secret(
    oauth_issuer: OAuthIssuer,
) -> None:
    oauth_issuer.add_client("app-wrong", "right-secret", "alice")
    provider = MsalTokenProvider(credentials(oauth_issuer, "app-wrong", "wrong-secret-xyz"))
    with pytest.raises(Permanent, match="invalid_client") as info:
        await provider.token()
    assert "wrong-secret-xyz" not in str(info.value)
    assert provider.health.last_error == str(info.value) and not provider.health.ok


async def test_an_unreachable_issuer_is_transient(oauth_issuer: OAuthIssuer) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    creds = credentials(oauth_issuer, "app-x", "s")
    creds = OAuthCredentials(**{**creds.__dict__, "authority": f"https://127.0.0.1:{port}/t"})
    with pytest.raises(Transient, match="unreachable"):
        await MsalTokenProvider(creds).token()


async def test_dovecot_accepts_the_token_with_xoauth2(
    oauth_issuer: OAuthIssuer, dovecot: Dovecot
) -> None:
    oauth_issuer.add_client("app-imap", "s3cret-imap", "bob")
    token = await MsalTokenProvider(credentials(oauth_issuer, "app-imap", "s3cret-imap")).token()
    context = ssl.create_default_context(cafile=str(dovecot.cert_file))
    with imaplib.IMAP4_SSL("127.0.0.1", dovecot.imaps_port, ssl_context=context) as imap:
        typ, _ = imap.authenticate("XOAUTH2", lambda _: xoauth2("bob", token))
        assert typ == "OK"
    with (
        imaplib.IMAP4_SSL("127.0.0.1", dovecot.imaps_port, ssl_context=context) as imap,
        pytest.raises(imaplib.IMAP4.error),
    ):
        imap.authenticate("XOAUTH2", lambda _: xoauth2("alice", token))  # bob's token
    assert base64.b64encode(xoauth2("u", "t"))  # plain bytes, encoded by the client
