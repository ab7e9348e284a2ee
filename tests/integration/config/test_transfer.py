"""Export from one system, import into another with a different secret key."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.config.service import build as config_service
from shared.service import Stack
from tests.support import api_client, server_settings

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
