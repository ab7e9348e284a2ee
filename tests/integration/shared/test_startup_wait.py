"""A service whose MongoDB is not there at start waits for it: one log line per try with the
address (no credentials, no traceback), then it starts (issue 12 item 5, issue 14)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.outage import gate_for, processor_behind
from tests.support import eventually


async def test_a_service_waits_for_mongodb_at_start(
    rabbit_url: str, mongo_url: str, mongo_db_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="shared.retry")
    async with gate_for(mongo_url) as gate:
        await gate.cut()
        stack = processor_behind(
            gate,
            rabbit_url=rabbit_url,
            mongo_url=mongo_url,
            database=mongo_db_name,
            instance="waits",
        )
        starting = asyncio.create_task(stack.start())

        async def retried() -> list[logging.LogRecord]:
            return [r for r in caplog.records if r.name == "shared.retry"]

        [line, *_] = await eventually(retried, timeout=60, what="a logged retry")
        assert not starting.done()
        await gate.restore()
        await asyncio.wait_for(starting, timeout=60)
        await stack.stop()
    text = line.getMessage()
    assert text.startswith(f"MongoDB at 127.0.0.1:{gate.port}") and "retrying in" in text
    assert line.exc_info is None
