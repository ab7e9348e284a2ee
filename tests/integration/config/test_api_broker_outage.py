"""A configuration change while RabbitMQ is away: 503 and nothing changed, not a 500 with the
change stored but never broadcast (the running services would not see it until restarted)."""

from __future__ import annotations

import pytest

from services.config.service import build as config_service
from shared.service import Stack
from tests.outage import gate_for
from tests.support import API_TOKEN, api_client, eventually, server_settings

pytestmark = pytest.mark.integration


async def test_a_change_while_rabbitmq_is_away_answers_503_and_changes_nothing(
    rabbit_url: str, mongo_url: str, mongo_db_name: str
) -> None:
    async with gate_for(rabbit_url) as gate:
        settings = server_settings(
            rabbit_url=gate.url(rabbit_url),
            mongo_url=mongo_url,
            database=mongo_db_name,
            instance="broker-away",
        )
        stack = Stack([config_service], settings)
        await stack.start()

        async def away() -> bool:
            return not await stack.rt.broker.ping(timeout=0.1)

        try:
            async with api_client(stack, API_TOKEN) as api:
                await gate.cut()
                await eventually(away, timeout=30, what="the connection seen as lost")
                refused = await api.patch("/settings/settings", json={"poll_interval_seconds": 9})
                stored = await stack.rt.store.properties.get(
                    module="settings", key="poll_interval_seconds"
                )
                await gate.restore()

                async def accepted() -> bool:
                    response = await api.patch(
                        "/settings/settings", json={"poll_interval_seconds": 9}
                    )
                    assert response.status_code in (200, 503), response.text
                    return response.status_code == 200

                await eventually(accepted, timeout=60, what="the change accepted once back")
        finally:
            await gate.restore()
            await stack.stop()
    assert refused.status_code == 503, refused.text
    assert "RabbitMQ is not reachable" in refused.json()["detail"]
    assert "nothing was changed" in refused.json()["detail"]
    assert stored is None
