"""Fleet status from the API and the CLI: a running fetcher instance with its heartbeat age
and accounts, each account's owner and last fetch; all gone after a clean shutdown."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from deploy.local.servers import Dovecot
from services.fetcher.service import build
from services.fetcher.settings import FetcherSettings
from shared.service import Stack
from tests.support import SECRET_KEY, eventually, server_settings
from tests.support_cli import cli_env, mailroom

pytestmark = pytest.mark.integration


async def test_fetchers_and_account_owners_in_api_and_cli(
    api: httpx.AsyncClient,
    config_stack: Stack,
    dovecot: Dovecot,
    rabbit_url: str,
    mongo_url: str,
    mongo_db_name: str,
) -> None:
    dovecot.reset_mailbox("bob")
    response = await api.post(
        "/accounts",
        json={
            "name": "support",
            "protocol": "IMAP",
            "host": "127.0.0.1",
            "port": dovecot.imap_port,
            "ca_file": str(dovecot.cert_file),
            "username": "bob",
            "password": "bobpw",
        },
    )
    assert response.status_code == 201, response.text
    settings = server_settings(
        rabbit_url=rabbit_url, mongo_url=mongo_url, database=mongo_db_name, instance="fx"
    )
    fetcher = Stack([lambda rt: build(rt, FetcherSettings(id="fetcher-x"))], settings)
    await fetcher.start()
    try:

        async def owned() -> list[dict[str, Any]] | None:
            accounts = (await api.get("/accounts")).json()
            done = accounts[0]["owner"] == "fetcher-x" and accounts[0]["last_fetch_at"]
            return accounts if done else None

        accounts = await eventually(owned, what="the account owned and fetched")
        instances = (await api.get("/fetchers")).json()
        assert [(i["id"], i["alive"], i["accounts"]) for i in instances] == [
            ("fetcher-x", True, ["support"])
        ]
        assert 0 <= instances[0]["heartbeat_age_seconds"] < 15
        ownership = (await api.get("/fetchers/accounts")).json()
        assert [(o["account"], o["owner"], o["lease_token"]) for o in ownership] == [
            ("support", "fetcher-x", 1)
        ]

        env = cli_env(
            rabbit_url=rabbit_url,
            mongo_url=mongo_url,
            database=mongo_db_name,
            secret_key=SECRET_KEY,
        )
        listed, table = await asyncio.gather(
            asyncio.to_thread(mailroom, "fetchers", "--json", env=env),
            asyncio.to_thread(mailroom, "fetchers", env=env),
        )
        assert listed.returncode == 0, listed.stderr
        assert [(i["id"], i["accounts"]) for i in json.loads(listed.stdout)] == [
            ("fetcher-x", ["support"])
        ]
        assert "fetcher-x" in table.stdout and "1: support" in table.stdout
        cli_accounts = await asyncio.to_thread(mailroom, "accounts", "list", "--json", env=env)
        assert [(a["name"], a["owner"]) for a in json.loads(cli_accounts.stdout)] == [
            ("support", "fetcher-x")
        ]
        assert accounts[0]["password_set"] is True and "bobpw" not in cli_accounts.stdout
    finally:
        await fetcher.stop()

    assert (await api.get("/fetchers")).json() == []
    assert (await api.get("/fetchers/accounts")).json()[0]["owner"] is None
