"""The suppression list from the API and the CLI: list, add, remove (issue 15)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from shared.service import Stack
from tests.support import SECRET_KEY
from tests.support_cli import cli_env, mailroom

pytestmark = pytest.mark.integration


async def test_an_operator_sees_adds_and_takes_off_suppressed_addresses(
    api: httpx.AsyncClient, config_stack: Stack, rabbit_url: str, mongo_url: str, mongo_db_name: str
) -> None:
    assert (await api.get("/suppressions")).json() == []
    added = await api.post(
        "/suppressions", json={"address": "Ivan@Example.org", "reason": "asked by phone"}
    )
    assert added.status_code == 201, added.text
    assert added.json()["address"] == "ivan@example.org"
    refused = await api.post("/suppressions", json={"address": "not an address"})
    assert refused.status_code == 422
    env = cli_env(
        rabbit_url=rabbit_url, mongo_url=mongo_url, database=mongo_db_name, secret_key=SECRET_KEY
    )
    added_cli = await asyncio.to_thread(mailroom, "suppressions", "add", "kim@example.org", env=env)
    assert added_cli.returncode == 0, added_cli.stderr
    listed = await asyncio.to_thread(mailroom, "suppressions", "list", "--json", env=env)
    assert sorted((e["address"], e["source"]) for e in json.loads(listed.stdout)) == [
        ("ivan@example.org", "api:admin"),
        ("kim@example.org", "cli"),
    ]
    removed = await asyncio.to_thread(
        mailroom, "suppressions", "remove", "kim@example.org", env=env
    )
    assert removed.returncode == 0, removed.stderr
    assert (await api.delete("/suppressions/ivan@example.org")).status_code == 204
    assert (await api.delete("/suppressions/ivan@example.org")).status_code == 404
    again = await asyncio.to_thread(mailroom, "suppressions", "remove", "kim@example.org", env=env)
    assert again.returncode == 1 and "not on the suppression list" in again.stderr
    assert (await api.get("/suppressions")).json() == []
