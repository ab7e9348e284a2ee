"""A processor runtime on the test servers, with an empty sender queue."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.runtime import Runtime
from shared.topology import SENDER_OUTBOUND
from tests.support import server_settings


@pytest.fixture
async def rt(rabbit_url: str, mongo_url: str, mongo_db_name: str) -> AsyncIterator[Runtime]:
    runtime = Runtime(
        server_settings(
            rabbit_url=rabbit_url,
            mongo_url=mongo_url,
            database=mongo_db_name,
            instance="proc-test",
        )
    )
    await runtime.start_store()
    await runtime.start_broker()
    queue = await runtime.broker.declare_queue(SENDER_OUTBOUND)
    await queue.purge()  # the vhost is shared by the session's tests
    yield runtime
    await runtime.broker.stop()
    await runtime.close()
