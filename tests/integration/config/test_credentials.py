"""The credentials manager through the API and the CLI: secrets go in and never come out,
accounts name credentials, a credential in use is not deleted, a changed app registration
drops its consent, and the values refused say why."""

from __future__ import annotations

import asyncio
import json

import httpx

from deploy.local.oauth_issuer import OAuthIssuer
from shared.service import Stack
from tests.secret_scan import SCAN
from tests.support import eventually
from tests.support_cli import mailroom, settings_cli_env

SECRET = SCAN.secret("a credential's client secret", "crud-client-secret-0123456789")
AUTHORITY = "https://login.microsoftonline.com/contoso.onmicrosoft.com"


async def test_credentials_api_keeps_secrets_and_guards_use(api: httpx.AsyncClient) -> None:
    body = {
        "name": "m365-app",
        "client_id": "11111111-2222-3333-4444-555555555555",
        "client_secret": SECRET,
        "client_secret_expires": "2027-01-31",
        "authority": AUTHORITY,
    }
    created = await api.post("/credentials", json=body)
    assert created.status_code == 201, created.text
    shown = created.json()
    assert shown["credential"]["client_secret_set"] is True
    assert shown["credential"]["flow"] == "client_credentials"
    assert shown["state"]["consent"] == "not_needed"
    assert (await api.post("/credentials", json=body)).status_code == 409

    # A refused value says which field and why.
    bad = await api.post("/credentials", json={**body, "name": "bad", "flow": "service_account"})
    assert bad.status_code == 422 and "service_account" in bad.json()["detail"]

    account = {
        "name": "helpdesk",
        "protocol": "IMAPS",
        "host": "outlook.office365.com",
        "username": "helpdesk@contoso.com",
        "auth": "oauth2",
        "credential": "m365-app",
    }
    unknown = await api.post("/accounts", json={**account, "credential": "typo"})
    assert unknown.status_code == 422 and "'typo' does not exist" in unknown.json()["detail"]
    assert (await api.post("/accounts", json=account)).status_code == 201
    # An account on an inline OAuth client moves to the credential; its stored client goes.
    inline = {
        **account,
        "name": "inline",
        "credential": None,
        "client_id": "old-client",
        "client_secret": SECRET,
        "authority": AUTHORITY,
        "scope": "https://outlook.office365.com/.default",
    }
    assert (await api.post("/accounts", json=inline)).status_code == 201
    moved = await api.patch(
        "/accounts/inline",
        json={"credential": "m365-app", "client_id": None, "authority": None, "scope": None},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["credential"] == "m365-app" and moved.json()["client_secret_set"] is False
    assert (await api.delete("/accounts/inline")).status_code == 200
    both = await api.post(
        "/accounts", json={**account, "name": "twice", "client_id": "x", "scope": "y"}
    )
    assert both.status_code == 422 and "leave client_id, scope unset" in both.json()["detail"]

    refused = await api.delete("/credentials/m365-app")
    assert refused.status_code == 422 and "incoming:helpdesk" in refused.json()["detail"]

    # A delegated credential waits for consent; changing its client drops the consent.
    changed = await api.patch(
        "/credentials/m365-app",
        json={"flow": "device_code", "client_secret": None},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["state"]["consent"] == "pending"
    assert changed.json()["credential"]["client_secret_set"] is False

    assert (await api.delete("/accounts/helpdesk")).status_code == 200
    assert (await api.delete("/credentials/m365-app")).status_code == 204
    assert (await api.get("/credentials/m365-app")).status_code == 404


async def test_credentials_from_the_cli(config_stack: Stack) -> None:
    env = settings_cli_env(config_stack.rt.settings)
    added = await asyncio.to_thread(
        mailroom,
        *("credentials", "add", "cli-app", "--client-id", "cli-client"),
        *("--authority", AUTHORITY, "--client-secret-stdin", "--json"),
        env=env,
        stdin=SECRET + "\n",
    )
    assert added.returncode == 0, added.stderr
    row = json.loads(added.stdout)[0]
    assert row["client_secret_set"] is True and row["consent"] == "not_needed"

    listed = await asyncio.to_thread(mailroom, "credentials", "list", env=env)
    assert "cli-app" in listed.stdout and SECRET not in listed.stdout
    shown = await asyncio.to_thread(mailroom, "credentials", "show", "cli-app", "--json", env=env)
    assert json.loads(shown.stdout)[0]["client_id"] == "cli-client"

    no_consent = await asyncio.to_thread(mailroom, "credentials", "authorize", "cli-app", env=env)
    assert no_consent.returncode == 1 and "needs no consent" in no_consent.stderr

    deleted = await asyncio.to_thread(mailroom, "credentials", "delete", "cli-app", env=env)
    assert deleted.returncode == 0 and "deleted credential cli-app" in deleted.stdout


async def test_device_code_consent_through_the_api(
    api: httpx.AsyncClient, oauth_issuer: OAuthIssuer
) -> None:
    oauth_issuer.add_client("api-device", None, "alice")
    created = await api.post(
        "/credentials",
        json={
            "name": "device",
            "flow": "device_code",
            "client_id": "api-device",
            "authority": oauth_issuer.authority(),
            "ca_file": str(oauth_issuer.ca_file),
        },
    )
    assert created.status_code == 201, created.text
    started = (await api.post("/credentials/device/authorize")).json()
    assert started["flow"] == "device_code" and started["user_code"] in started["message"]
    assert started["verification_uri"].endswith("/devicelogin")
    oauth_issuer.approve_device(started["user_code"])  # the user signs in with the code

    async def granted() -> dict[str, object] | None:
        state: dict[str, object] = (await api.get("/credentials/device")).json()["state"]
        return state if state["consent"] == "granted" else None

    state = await eventually(granted, what="the device consent completed by the service")
    assert state["consented_by"] == "alice"
    for refresh in list(oauth_issuer.grants.refresh):
        SCAN.secret("an OAuth 2.0 refresh token", refresh)
    for token in list(oauth_issuer.tokens):
        SCAN.secret("an OAuth 2.0 access token", token)
