"""The config service's HTTP API against real MongoDB and RabbitMQ."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from services.config.service import build as config_service
from shared.models.messages import ConfigChanged
from shared.runtime import Runtime
from shared.service import Stack
from shared.settings import SharedSettings
from tests.support import server_settings

PASSWORD = "s3cret-imap-password"


def make_settings(rabbit_url: str, mongo_url: str, db: str, instance: str) -> SharedSettings:
    return server_settings(
        rabbit_url=rabbit_url,
        mongo_url=mongo_url,
        database=db,
        instance=instance,
    )


ACCOUNT = {
    "name": "support",
    "protocol": "IMAPS",
    "host": "imap.example.org",
    "username": "support@example.org",
    "password": PASSWORD,
}


async def test_requests_without_the_token_are_refused(api: httpx.AsyncClient) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong"}):
        response = await api.get("/accounts", headers=headers)
        assert response.status_code == 401
    assert (await api.get("/healthz", headers={"Authorization": ""})).status_code == 200


async def test_account_password_is_never_returned_nor_stored_in_clear(
    api: httpx.AsyncClient, config_stack: Stack
) -> None:
    created = await api.post("/accounts", json=ACCOUNT)
    assert created.status_code == 201, created.text
    assert created.json()["password_set"] is True and created.json()["port"] == 993
    for path in ("/accounts", "/accounts/support", "/properties"):
        response = await api.get(path)
        assert response.status_code == 200
        assert PASSWORD not in response.text
    raw = await config_stack.rt.store.db["properties"].find_one({"module": "incoming.accounts"})
    assert raw is not None and PASSWORD not in str(raw)
    log = await config_stack.rt.store.properties.log()
    assert PASSWORD not in str([e.model_dump() for e in log])


async def test_change_keeps_the_password_and_activation_works(
    api: httpx.AsyncClient, config_stack: Stack
) -> None:
    await api.post("/accounts", json=ACCOUNT)
    changed = await api.patch("/accounts/support", json={"enabled": False, "port": 1993})
    assert changed.status_code == 200, changed.text
    assert changed.json()["enabled"] is False and changed.json()["password_set"] is True
    account = config_stack.rt.config.accounts["support"]
    assert account.password is not None and account.password.get_secret_value() == PASSWORD


async def test_duplicate_and_missing_accounts(api: httpx.AsyncClient) -> None:
    assert (await api.post("/accounts", json=ACCOUNT)).status_code == 201
    again = await api.post("/accounts", json=ACCOUNT)
    assert again.status_code == 409 and "exists" in again.json()["detail"]
    missing = await api.patch("/accounts/nope", json={"enabled": True})
    assert missing.status_code == 404


async def test_subject_template_the_pattern_cannot_match_is_refused(
    api: httpx.AsyncClient,
) -> None:
    response = await api.patch(
        "/settings/settings", json={"outgoing_subject_template": "{{ subject }} #{{ case }}"}
    )
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "config_rejected"
    assert "replies would open new cases" in body["detail"]
    settings = (await api.get("/settings/settings")).json()
    assert settings["outgoing_subject_template"] == "{{ subject }} [Case#{{ case }}]"


async def test_invalid_values_are_refused_with_what_to_fix(api: httpx.AsyncClient) -> None:
    bad_port = await api.post("/accounts", json={**ACCOUNT, "port": 70000})
    assert bad_port.status_code == 422
    unknown = await api.patch("/settings/settings", json={"poll": 3})
    assert unknown.status_code == 422 and "known keys" in unknown.json()["detail"]


async def test_every_change_is_broadcast_and_another_service_reloads(
    config_stack: Stack, api: httpx.AsyncClient, rabbit_url: str, mongo_url: str, mongo_db_name: str
) -> None:
    other = Runtime(make_settings(rabbit_url, mongo_url, mongo_db_name, "listener"))
    seen: list[ConfigChanged] = []
    router = other.config_router("listener")
    other.broker.include_router(router)

    async def record(config: object) -> None:
        seen.append(ConfigChanged(version=other.config.version, module="", key="", action="set"))

    other.on_config(record)
    await other.start_store()
    await other.broker.start()
    try:
        before = other.config.settings.poll_interval_seconds
        response = await api.patch("/settings/settings", json={"poll_interval_seconds": 7})
        assert response.status_code == 200
        for _ in range(100):
            if other.config.settings.poll_interval_seconds == 7:
                break
            await asyncio.sleep(0.05)
        assert before != 7 and other.config.settings.poll_interval_seconds == 7
        assert seen and seen[-1].version == response.json()["version"]
    finally:
        await other.broker.stop()
        await other.close()


async def test_operator_reads_and_works_the_desk_but_changes_nothing(
    rabbit_url: str, mongo_url: str, mongo_db_name: str, tmp_path: Path
) -> None:
    token_file = tmp_path / "operator-token"
    token_file.write_text("operator-token-0123456789\n")
    settings = make_settings(rabbit_url, mongo_url, mongo_db_name, "roles").model_copy(
        update={"operator_token_file": token_file}
    )
    settings = SharedSettings.model_validate(settings.model_dump())
    stack = Stack([config_service], settings)
    await stack.start()
    try:
        assert stack.asgi is not None
        transport = httpx.ASGITransport(app=stack.asgi)
        operator = {"Authorization": "Bearer operator-token-0123456789"}
        async with httpx.AsyncClient(transport=transport, base_url="http://c") as client:
            for path in ("/accounts", "/settings/settings", "/failed", "/properties"):
                assert (await client.get(path, headers=operator)).status_code == 200, path
            refused = await client.post("/accounts", json=ACCOUNT, headers=operator)
            assert refused.status_code == 403 and "admin" in refused.text
            patch = await client.patch(
                "/settings/settings", json={"poll_interval_seconds": 9}, headers=operator
            )
            assert patch.status_code == 403
            replay = await client.post("/failed/replay", headers=operator)
            assert replay.status_code == 200 and replay.json() == []
    finally:
        await stack.stop()


def test_placeholder_and_shared_tokens_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="MAILROOM_API_TOKEN: replace the placeholder"):
        SharedSettings(api_token="changethis")
    with pytest.raises(ValueError, match="must differ"):
        SharedSettings(api_token="same-token-value", operator_token="same-token-value")
    with pytest.raises(ValueError, match="cannot be read"):
        SharedSettings(api_token_file=tmp_path / "missing")
