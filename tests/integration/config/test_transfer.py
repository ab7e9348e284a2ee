"""Export from one system, import into another with a different secret key."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pymongo import AsyncMongoClient

from deploy.local.oauth_grants import app_certificate, service_account_key
from deploy.local.oauth_issuer import OAuthIssuer
from deploy.local.servers import Dovecot
from services.config.service import build as config_service
from shared.service import Stack
from tests.integration.sender.test_oauth_credentials import (
    CALLBACK,
    CLIENT_SECRET,
    browser_consent,
    register_tokens,
)
from tests.secret_scan import SCAN
from tests.support import api_client, server_settings
from tests.support_cli import mailroom, settings_cli_env

TOKEN = "transfer-test-token-012345"
PASSWORD = "imap-password-to-move"
PASSPHRASE = "a long export passphrase"


async def make_stack(
    rabbit_url: str, mongo_url: str, database: str, key: str
) -> AsyncIterator[tuple[Stack, httpx.AsyncClient]]:
    stack = Stack(
        [config_service],
        server_settings(
            rabbit_url=rabbit_url,
            mongo_url=mongo_url,
            database=database,
            instance=database,
            api_token=TOKEN,
            secret_key=key,
        ),
    )
    await stack.start()
    async with api_client(stack, TOKEN) as client:
        yield stack, client
    await stack.stop()


@pytest.fixture
async def source(
    rabbit_url: str, mongo_url: str, mongo_db_name: str
) -> AsyncIterator[tuple[Stack, httpx.AsyncClient]]:
    async for pair in make_stack(rabbit_url, mongo_url, mongo_db_name, "source-secret-key"):
        yield pair


@pytest.fixture
async def target(
    rabbit_url: str, mongo_url: str, mongo_db_name: str
) -> AsyncIterator[tuple[Stack, httpx.AsyncClient]]:
    name = f"{mongo_db_name}_target"
    async for pair in make_stack(rabbit_url, mongo_url, name, "target-secret-key"):
        yield pair
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongo_url)
    await client.drop_database(name)
    await client.close()


async def test_export_and_import_between_systems(
    source: tuple[Stack, httpx.AsyncClient], target: tuple[Stack, httpx.AsyncClient]
) -> None:
    _, src = source
    target_stack, dst = target
    created = await src.post(
        "/accounts",
        json={"name": "support", "host": "imap.example.org", "username": "u", "password": PASSWORD},
    )
    assert created.status_code == 201, created.text
    assert (await src.patch("/settings/settings", json={"poll_interval_seconds": 12})).is_success

    plain = (await src.post("/config/export", json={})).json()
    assert plain["secrets"] == "excluded" and PASSWORD not in str(plain)
    sealed = (await src.post("/config/export", json={"passphrase": PASSPHRASE})).json()
    assert sealed["secrets"] == "encrypted" and PASSWORD not in str(sealed)

    wrong = await dst.post("/config/import", json={"document": sealed, "passphrase": "nope" * 4})
    assert wrong.status_code == 422 and "wrong passphrase" in wrong.text
    assert (await dst.get("/accounts")).json() == []

    applied = await dst.post("/config/import", json={"document": sealed, "passphrase": PASSPHRASE})
    assert applied.status_code == 200, applied.text
    account = target_stack.rt.config.accounts["support"]
    assert account.password is not None and account.password.get_secret_value() == PASSWORD
    assert target_stack.rt.config.settings.poll_interval_seconds == 12

    # a later import without secrets keeps the password stored here
    again = await dst.post("/config/import", json={"document": plain})
    assert again.status_code == 200, again.text
    kept = target_stack.rt.config.accounts["support"].password
    assert kept is not None and kept.get_secret_value() == PASSWORD


async def test_an_invalid_document_is_refused_whole(
    source: tuple[Stack, httpx.AsyncClient],
) -> None:
    _, api = source
    document = (await api.post("/config/export", json={})).json()
    document["properties"] = [
        {"module": "settings", "key": "poll_interval_seconds", "value": 3},
        {"module": "settings", "key": "outgoing_subject_template", "value": "{{ subject }}"},
    ]
    refused = await api.post("/config/import", json={"document": document})
    assert refused.status_code == 422 and "replies would open new cases" in refused.text
    settings = (await api.get("/settings/settings")).json()
    assert settings["poll_interval_seconds"] == 30  # nothing of the document was written


async def credential(api: httpx.AsyncClient, **fields: object) -> None:
    created = await api.post("/credentials", json=fields)
    assert created.status_code == 201, created.text


def box(dovecot: Dovecot, name: str, credential: str) -> dict[str, object]:
    """An IMAPS account signing in as bob with the named credential."""
    return {
        "name": name,
        "protocol": "IMAPS",
        "host": "127.0.0.1",
        "port": dovecot.imaps_port,
        "username": "bob",
        "ca_file": str(dovecot.cert_file),
        "auth": "oauth2",
        "credential": credential,
    }


async def test_credentials_move_with_their_secrets_and_refresh_token(
    source: tuple[Stack, httpx.AsyncClient],
    target: tuple[Stack, httpx.AsyncClient],
    oauth_issuer: OAuthIssuer,
    dovecot: Dovecot,
    tmp_path: Path,
) -> None:
    source_stack, src = source
    _, dst = target
    ca = str(oauth_issuer.ca_file)
    # A delegated credential with the user's consent (its refresh token must travel) ...
    oauth_issuer.add_client("move-web", CLIENT_SECRET, "bob", ttl=120)
    await credential(
        src,
        name="delegated",
        flow="authorization_code",
        client_id="move-web",
        client_secret=CLIENT_SECRET,
        authority=oauth_issuer.authority(),
        redirect_uri=CALLBACK,
        ca_file=ca,
    )
    await browser_consent(
        src, oauth_issuer, (await src.post("/credentials/delegated/authorize")).json()["url"]
    )
    # ... an app-only one signing with a certificate's private key ...
    pem, cert = app_certificate(days=200)
    SCAN.secret(
        "a certificate credential's private key",
        pem.split("-----END PRIVATE KEY-----")[0].splitlines()[5],
    )
    oauth_issuer.add_client("move-cert", None, "bob", certificate=cert)
    await credential(
        src,
        name="cert",
        client_id="move-cert",
        certificate=pem,
        authority=oauth_issuer.authority(),
        ca_file=ca,
    )
    # ... and a Google service account.
    robot = "move@proj.iam.gserviceaccount.com"
    key, public = service_account_key(robot, oauth_issuer.google_token_uri)
    SCAN.secret("a Google service account key", json.loads(key)["private_key"].splitlines()[5])
    oauth_issuer.grants.add_service_account(robot, public, frozenset({"bob"}))
    await credential(
        src,
        name="robot",
        provider="google",
        flow="service_account",
        service_account_key=key,
        ca_file=ca,
    )
    names = {"delegated": "box-delegated", "cert": "box-cert", "robot": "box-robot"}
    for cred, account in names.items():
        assert (await src.post("/accounts", json=box(dovecot, account, cred))).status_code == 201
        tested = (await src.post(f"/accounts/{account}/test")).json()
        assert tested["ok"] is True, tested
    register_tokens(oauth_issuer)

    # The CLI writes the export file; no secret or token is in it unencrypted.
    exported = tmp_path / "mailroom.json"
    written = await asyncio.to_thread(
        mailroom,
        *("config", "export", str(exported), "--passphrase-stdin"),
        env=settings_cli_env(source_stack.rt.settings),
        stdin=PASSPHRASE + "\n",
    )
    assert written.returncode == 0, written.stderr
    assert "3 credentials" in written.stdout
    text = exported.read_text()
    SCAN.record("the export file", text)
    assert not [kind for value, kind in SCAN.secrets.items() if value in text]
    document = json.loads(text)
    travelled = {c["fields"]["name"]: c for c in document["credentials"]}
    assert travelled["delegated"]["consent"] == "granted"
    assert travelled["delegated"]["token_cache"] is not None

    # Refused whole: a wrong passphrase, or accounts naming credentials the file lacks.
    wrong = await dst.post("/config/import", json={"document": document, "passphrase": "nope" * 4})
    assert wrong.status_code == 422 and "wrong passphrase" in wrong.text
    lacking = {**document, "credentials": [travelled["cert"], travelled["robot"]]}
    refused = await dst.post("/config/import", json={"document": lacking, "passphrase": PASSPHRASE})
    assert refused.status_code == 422 and "credential 'delegated'" in refused.text
    broken = {**travelled["cert"], "fields": {**travelled["cert"]["fields"], "authority": "x"}}
    invalid = {**document, "credentials": [travelled["delegated"], broken, travelled["robot"]]}
    refused = await dst.post("/config/import", json={"document": invalid, "passphrase": PASSPHRASE})
    assert refused.status_code == 422 and "'cert'" in refused.text and "authority" in refused.text
    assert (await dst.get("/credentials")).json() == []
    assert (await dst.get("/accounts")).json() == []

    applied = await dst.post(
        "/config/import", json={"document": document, "passphrase": PASSPHRASE}
    )
    assert applied.status_code == 200, applied.text
    shown = {c["credential"]["name"]: c for c in (await dst.get("/credentials")).json()}
    assert shown["delegated"]["state"]["consent"] == "granted"
    assert shown["delegated"]["state"]["refresh_token_at"] is not None
    assert shown["delegated"]["credential"]["client_secret_set"] is True
    assert shown["cert"]["credential"]["certificate_set"] is True
    assert shown["robot"]["credential"]["service_account_key_set"] is True
    # Every access token expires: the new system signs in with the refresh token that moved.
    oauth_issuer.expire_tokens()
    for account in names.values():
        tested = (await dst.post(f"/accounts/{account}/test")).json()
        assert tested["ok"] is True, tested
    register_tokens(oauth_issuer)

    # Without a passphrase the credentials still travel, their secrets and tokens do not.
    plain = (await src.post("/config/export", json={})).json()
    assert all(c["token_cache"] is None for c in plain["credentials"])
    assert all(
        c["fields"][field] is None
        for c in plain["credentials"]
        for field in ("client_secret", "certificate", "service_account_key")
    )
