"""Credential health through the real config API and CLI while the fetcher runs: an OAuth 2.0
account shows its token's time and expiry after a fetch, a wrong password and a refused
client secret show as auth errors; operators may read it, and no secret is in it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from deploy.local.servers import Dovecot, OAuthIssuer
from services.config.service import build as config_service
from services.fetcher.service import build as fetcher_service
from shared.service import Stack
from tests.integration.fetcher.helpers import append, tricky_mail
from tests.support import API_TOKEN, SECRET_KEY, api_client, eventually, server_settings
from tests.support_cli import cli_env, mailroom

pytestmark = pytest.mark.integration

OPERATOR_TOKEN = "health-operator-token-0123"
WRONG_PASSWORD = "not-alices-password-42"
CLIENT_SECRET = "health-client-secret-42"
WRONG_SECRET = "health-wrong-secret-42"


@pytest.fixture
async def stack(rabbit_url: str, mongo_url: str, mongo_db_name: str) -> AsyncIterator[Stack]:
    """Config service and fetcher in one process (as ``mailroom run all``), with an
    operator token."""
    settings = server_settings(
        rabbit_url=rabbit_url,
        mongo_url=mongo_url,
        database=mongo_db_name,
        instance="health-test",
        operator_token=OPERATOR_TOKEN,
    )
    running = Stack([config_service, fetcher_service], settings)
    await running.start()
    yield running
    await running.stop()


def oauth_fields(dovecot: Dovecot, issuer: OAuthIssuer, client: str, secret: str) -> dict[str, Any]:
    return {
        "protocol": "IMAPS",
        "host": "127.0.0.1",
        "port": dovecot.imaps_port,
        "username": "bob",
        "ca_file": str(dovecot.cert_file),
        "auth": "oauth2",
        "client_id": client,
        "client_secret": secret,
        "authority": issuer.authority(),
        "scope": "https://outlook.office365.com/.default",
        "oauth_ca_file": str(issuer.ca_file),
    }


async def health(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    response = await client.get(f"/accounts/{name}/health")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_health_shows_token_times_and_auth_errors(
    stack: Stack,
    dovecot: Dovecot,
    oauth_issuer: OAuthIssuer,
    rabbit_url: str,
    mongo_url: str,
    mongo_db_name: str,
) -> None:
    dovecot.reset_mailbox("bob")
    append(dovecot, "bob", tricky_mail(1))
    oauth_issuer.add_client("health-app", CLIENT_SECRET, "bob")
    accounts = {
        "oauth-box": oauth_fields(dovecot, oauth_issuer, "health-app", CLIENT_SECRET),
        "bad-secret": oauth_fields(dovecot, oauth_issuer, "health-app", WRONG_SECRET),
        "bad-password": {
            "protocol": "IMAP",
            "host": "127.0.0.1",
            "port": dovecot.imap_port,
            "username": "alice",
            "password": WRONG_PASSWORD,
            "ca_file": str(dovecot.cert_file),
        },
    }
    async with api_client(stack, API_TOKEN) as admin, api_client(stack, OPERATOR_TOKEN) as op:
        for name, fields in accounts.items():
            response = await admin.post("/accounts", json={"name": name, **fields})
            assert response.status_code == 201, response.text

        async def fetched() -> dict[str, Any] | None:
            body = await health(op, "oauth-box")
            return body if body["last_fetch_at"] else None

        good = await eventually(fetched, what="oauth-box's first good round")
        token_at = datetime.fromisoformat(good["last_token_at"])
        expires_at = datetime.fromisoformat(good["token_expires_at"])
        assert 3000 < (expires_at - token_at).total_seconds() <= 3600  # the issuer's 1 h
        assert good["failures"] == 0 and good["last_auth_error"] is None

        async def refused(name: str) -> dict[str, Any] | None:
            body = await health(op, name)
            return body if body["last_auth_error"] else None

        wrong = await eventually(lambda: refused("bad-password"), what="the refused login")
        assert "login refused for alice@127.0.0.1" in wrong["last_auth_error"]
        assert wrong["last_fetch_at"] is None and wrong["failures"] >= 1
        assert wrong["last_token_at"] is None

        secret = await eventually(lambda: refused("bad-secret"), what="the refused client")
        assert "invalid_client" in secret["last_auth_error"]
        assert secret["last_token_at"] is None and secret["last_error"]

        listing = await op.get("/account-health")
        assert listing.status_code == 200
        assert [h["account"] for h in listing.json()] == ["bad-password", "bad-secret", "oauth-box"]
        assert (await op.get("/accounts/nobody/health")).status_code == 404
        assert (await admin.get("/accounts/oauth-box/health")).status_code == 200

    env = cli_env(
        rabbit_url=rabbit_url, mongo_url=mongo_url, database=mongo_db_name, secret_key=SECRET_KEY
    )
    shown = mailroom("accounts", "health", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    rows = {row["account"]: row for row in json.loads(shown.stdout)}
    assert rows["oauth-box"]["last_token_at"] and rows["oauth-box"]["token_expires_at"]
    assert "login refused" in rows["bad-password"]["last_auth_error"]
    one = mailroom("accounts", "health", "bad-secret", env=env)
    assert one.returncode == 0 and "invalid_client" in one.stdout
    assert mailroom("accounts", "health", "nobody", env=env).returncode == 1

    everything = listing.text + shown.stdout + one.stdout
    for secret_text in (WRONG_PASSWORD, CLIENT_SECRET, WRONG_SECRET, *oauth_issuer.tokens):
        assert secret_text not in everything
