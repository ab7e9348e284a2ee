"""A service that misses a broadcast recovers with the next one, by its version gap."""

from __future__ import annotations

import logging

import httpx
import pytest

from shared.runtime import Runtime
from tests.support import eventually, server_settings


async def test_a_missed_broadcast_is_healed_by_the_next_ones_version_gap(
    api: httpx.AsyncClient,
    rabbit_url: str,
    mongo_url: str,
    mongo_db_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = server_settings(
        rabbit_url=rabbit_url, mongo_url=mongo_url, database=mongo_db_name, instance="gap"
    )
    other = Runtime(settings)
    other.broker.include_router(other.config_router("listener"))
    await other.start_store()
    await other.broker.start()
    try:
        first = await api.patch("/settings/settings", json={"poll_interval_seconds": 7})
        assert first.status_code == 200
        await eventually(
            lambda: _at(other, first.json()["version"]), what="the first change to arrive"
        )

        # Detached: its queue is exclusive and auto-deleted, so this broadcast is lost to it.
        await other.broker.stop()
        missed = await api.patch("/settings/settings", json={"fetch_retries": 9})
        assert missed.status_code == 200
        other.broker.include_router(other.config_router("listener"))
        await other.broker.start()
        assert other.config.settings.fetch_retries == 5

        caplog.set_level(logging.INFO, logger="shared.runtime")
        last = await api.put("/catalogue/system/flavour", json={"value": "staging"})
        assert last.status_code == 200
        await eventually(lambda: _at(other, last.json()["version"]), what="the gap to heal")
        assert other.config.settings.fetch_retries == 9 and other.config.system.flavour == "staging"
        jumps = [r for r in caplog.records if "version jumped" in r.getMessage()]
        assert [(r.loaded_version, r.version) for r in jumps] == [  # type: ignore[attr-defined]
            (first.json()["version"], last.json()["version"])
        ]
    finally:
        await other.broker.stop()
        await other.close()


async def _at(rt: Runtime, version: int) -> bool:
    return rt.config.version == version
