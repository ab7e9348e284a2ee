"""Static credentials (an API token a mail server issued: Fastmail, Stalwart) on every surface
the other kinds have: the API, the CLI, the console's form, the audit, and the export/import
round trip. The token goes in and never comes out (``tests.secret_scan`` checks the answers,
the CLI's output and the logs against the values registered here)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from services.config.users import add_user
from shared.secrets import is_sealed
from shared.service import Stack
from tests.integration.config.test_transfer import PASSPHRASE, source, target
from tests.secret_scan import SCAN
from tests.support import console_client, sign_in
from tests.support_cli import mailroom, settings_cli_env

pytestmark = pytest.mark.integration

__all__ = ["source", "target"]  # the transfer test's two systems

TOKEN = SCAN.secret("a static API token", "fmu1-config-static-token-0123456789")
NEW_TOKEN = SCAN.secret("a static API token", "fmu1-config-static-token-renewed-42")
PASSWORD = SCAN.secret("password of a console user", "console-static-password-0123")
FASTMAIL = "https://api.fastmail.com/jmap/session"


def jmap_account(name: str, credential: str) -> dict[str, object]:
    return {
        "name": name,
        "protocol": "JMAP",
        "host": "api.fastmail.com",
        "jmap_url": FASTMAIL,
        "username": "helpdesk@example.com",
        "auth": "oauth2",
        "credential": credential,
    }


async def test_a_static_token_through_the_api(config_stack: Stack, api: httpx.AsyncClient) -> None:
    created = await api.post(
        "/credentials", json={"name": "fastmail", "provider": "static", "token": TOKEN}
    )
    assert created.status_code == 201, created.text
    shown = created.json()["credential"]
    assert shown["flow"] == "api_token" and shown["token_set"] is True
    assert "token" not in shown and shown["client_id"] is None
    assert created.json()["state"]["consent"] == "not_needed"
    # Stored sealed, like a client secret.
    doc = await config_stack.rt.store.db["credentials"].find_one({"_id": "fastmail"})
    assert doc is not None and is_sealed(doc["token"]) and TOKEN not in str(doc)

    for body, problem in (
        ({"name": "x", "provider": "static"}, "needs token"),
        ({"name": "x", "provider": "static", "token": TOKEN, "client_id": "a"}, "client_id"),
        ({"name": "x", "provider": "static", "token": TOKEN, "flow": "device_code"}, "api_token"),
    ):
        refused = await api.post("/credentials", json=body)
        assert refused.status_code == 422 and problem in refused.json()["detail"], refused.text

    # A JMAP account names it (bearer); so may an IMAP one (XOAUTH2 with the token).
    assert (await api.post("/accounts", json=jmap_account("fm", "fastmail"))).status_code == 201
    imap = {
        **jmap_account("fm-imap", "fastmail"),
        "protocol": "IMAPS",
        "host": "imap.fastmail.com",
        "jmap_url": None,
    }
    assert (await api.post("/accounts", json=imap)).status_code == 201, imap
    used = (await api.get("/credentials/fastmail")).json()["used_by"]
    assert used == ["incoming:fm", "incoming:fm-imap"]

    changed = await api.patch("/credentials/fastmail", json={"token": NEW_TOKEN})
    assert changed.status_code == 200 and changed.json()["credential"]["token_set"] is True
    stored = await config_stack.rt.credentials.get(name="fastmail")
    assert stored.token is not None and stored.token.get_secret_value() == NEW_TOKEN
    (last, *_) = await config_stack.rt.credentials.history(name="fastmail")
    assert last.action == "changed" and last.fields == ["token"]
    refused = await api.delete("/credentials/fastmail")
    assert refused.status_code == 422 and "incoming:fm" in refused.json()["detail"]


async def test_a_static_token_from_the_cli(config_stack: Stack) -> None:
    env = settings_cli_env(config_stack.rt.settings)
    added = await asyncio.to_thread(
        mailroom,
        *("credentials", "add", "fm-cli", "--provider", "static", "--token-stdin", "--json"),
        env=env,
        stdin=TOKEN + "\n",
    )
    assert added.returncode == 0, added.stderr
    (row,) = json.loads(added.stdout)
    assert row["flow"] == "api_token" and row["consent"] == "not_needed"
    shown = await asyncio.to_thread(mailroom, "credentials", "show", "fm-cli", "--json", env=env)
    assert json.loads(shown.stdout)[0]["token_set"] is True
    listed = await asyncio.to_thread(mailroom, "credentials", "list", env=env)
    assert "fm-cli" in listed.stdout and "static" in listed.stdout
    listed_json = await asyncio.to_thread(mailroom, "credentials", "list", "--json", env=env)
    assert json.loads(listed_json.stdout)[0]["token_set"] is True

    renewed = await asyncio.to_thread(
        mailroom, "credentials", "set", "fm-cli", "--token-stdin", env=env, stdin=NEW_TOKEN + "\n"
    )
    assert renewed.returncode == 0, renewed.stderr
    stored = await config_stack.rt.credentials.get(name="fm-cli")
    assert stored.token is not None and stored.token.get_secret_value() == NEW_TOKEN
    no_consent = await asyncio.to_thread(mailroom, "credentials", "authorize", "fm-cli", env=env)
    assert no_consent.returncode == 1 and "needs no consent" in no_consent.stderr
    helped = await asyncio.to_thread(mailroom, "credentials", "add", "--help", env=env)
    assert "--token-stdin" in helped.stdout


async def test_the_console_form_of_a_static_token(config_stack: Stack) -> None:
    await add_user(config_stack.rt, name="admin", role="admin", password=PASSWORD, who="test")
    async with console_client(config_stack) as browser:
        csrf = await sign_in(browser, "admin", PASSWORD)
        form = {
            "csrf_token": csrf,
            "saved": "",
            "name": "fm-console",
            "provider": "static",
            "flow": "client_credentials",  # the select still shows the old provider's flow
        }
        drawn = await browser.post("/console/email/credential-draft", data=form)
        assert drawn.status_code == 200
        assert 'name="token"' in drawn.text
        for oauth in ("client_id", "client_secret", "authority", "scopes", "ca_file"):
            assert f'name="{oauth}"' not in drawn.text, oauth
        assert 'value="api_token" selected' in drawn.text

        missing = await browser.post(
            "/console/email/new-credential", data={**form, "flow": "api_token", "token": ""}
        )
        assert missing.status_code == 422 and "needs token" in missing.text
        added = await browser.post(
            "/console/email/new-credential", data={**form, "flow": "api_token", "token": TOKEN}
        )
        assert added.status_code == 303, added.text
        page = await browser.get("/console/email/credentials/fm-console")
        assert ">set<" in page.text and TOKEN not in page.text and "Authorize" not in page.text
        listing = await browser.get("/console/email/credentials")
        assert "fm-console" in listing.text and "static" in listing.text
    stored = await config_stack.rt.credentials.get(name="fm-console")
    assert stored.token is not None and stored.token.get_secret_value() == TOKEN


async def test_a_static_token_travels_encrypted_and_stays_when_excluded(
    source: tuple[Stack, httpx.AsyncClient], target: tuple[Stack, httpx.AsyncClient]
) -> None:
    _, src = source
    target_stack, dst = target
    body = {"name": "fastmail", "provider": "static", "token": TOKEN}
    assert (await src.post("/credentials", json=body)).status_code == 201
    assert (await src.post("/accounts", json=jmap_account("fm", "fastmail"))).status_code == 201

    exported = await src.post("/config/export", json={"passphrase": PASSPHRASE})
    assert exported.status_code == 200, exported.text
    document = exported.json()
    (travelling,) = document["credentials"]
    assert travelling["fields"]["provider"] == "static"
    assert isinstance(travelling["fields"]["token"], dict) and TOKEN not in exported.text
    imported = await dst.post(
        "/config/import", json={"document": document, "passphrase": PASSPHRASE}
    )
    assert imported.status_code == 200, imported.text
    arrived = await target_stack.rt.credentials.get(name="fastmail")
    assert arrived.token is not None and arrived.token.get_secret_value() == TOKEN
    shown = (await dst.get("/credentials/fastmail")).json()
    assert shown["credential"]["token_set"] is True and shown["used_by"] == ["incoming:fm"]

    # Without a passphrase the token is left out, and an import keeps the one stored there.
    plain = await src.post("/config/export", json={})
    assert plain.status_code == 200 and TOKEN not in plain.text
    assert plain.json()["credentials"][0]["fields"]["token"] is None
    again = await dst.post("/config/import", json={"document": plain.json()})
    assert again.status_code == 200, again.text
    kept = await target_stack.rt.credentials.get(name="fastmail")
    assert kept.token is not None and kept.token.get_secret_value() == TOKEN
