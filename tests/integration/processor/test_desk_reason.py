"""The desk shows why a mail failed even when MongoDB was away at that moment (the reason
travels in the dead letter's headers, issue 14 defect 2), and a mail that has its case is
never shown as failed (defect 4)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.broker import publish
from shared.retry import dead_letter
from shared.runtime import Runtime
from shared.service import Stack
from shared.topology import MAIL_RECEIVED
from tests.e2e.conftest import DEFAULT_SCRIPTS, install_script, ok
from tests.integration.processor.helpers import store_raw
from tests.outage import SCRIPT_GATES, gate_for, processor_behind
from tests.support import eventually, make_mail


@pytest.fixture
def outage_script(tmp_path: Path) -> Iterator[str]:
    """A script that takes MongoDB away, then fails: the mail fails with MongoDB gone."""
    yield from install_script(
        tmp_path,
        "outage",
        """
        async def run(mail, ctx):
            from tests.outage import SCRIPT_GATES
            await SCRIPT_GATES[0].cut()
            raise RuntimeError("script bug while MongoDB is away")
        """,
    )


async def test_the_reason_reaches_the_desk_when_mongodb_was_away(
    rt: Runtime,
    config_stack: Stack,
    api: httpx.AsyncClient,
    outage_script: str,
    rabbit_url: str,
    mongo_url: str,
    mongo_db_name: str,
) -> None:
    scripts = [{"name": n, "enabled": True} for n in [outage_script, *DEFAULT_SCRIPTS]]
    await ok(await api.patch("/settings/processor", json={"incoming_scripts": scripts}))
    data, _ = make_mail(subject="Fails during an outage", sender="unlucky@example.org")
    msg = await store_raw(rt, data, "1:1")
    async with gate_for(mongo_url) as gate:
        SCRIPT_GATES[:] = [gate]
        processor = processor_behind(
            gate,
            rabbit_url=rabbit_url,
            mongo_url=mongo_url,
            database=mongo_db_name,
            instance="desk-reason",
        )
        await processor.start()
        try:
            await publish(rt.broker, msg, routing_key=MAIL_RECEIVED)
            entries = await eventually(
                config_stack.rt.store.desk.search, timeout=60, what="the mail on the desk"
            )
        finally:
            await gate.restore()
            await processor.stop()
    [entry] = entries
    assert entry.ref == msg.raw_id
    assert "script bug while MongoDB is away" in entry.error
    assert "delivery limit" not in entry.error


async def test_a_processed_mail_is_not_put_on_the_desk(rt: Runtime, config_stack: Stack) -> None:
    data, _ = make_mail(subject="Has its case", sender="lucky@example.org")
    msg = await store_raw(rt, data, "1:1")
    await rt.store.raw_emails.set_status(raw_id=msg.raw_id, status="processed", case_number=10001)
    # A redelivered copy fails late (e.g. it met an outage that has passed since).
    await rt.store.raw_emails.record_failure(raw_id=msg.raw_id, error="late failure")
    await dead_letter(rt.broker, msg, routing_key=MAIL_RECEIVED, reason="late failure")
    other, _ = make_mail(subject="Really failed", sender="unlucky@example.org")
    failed = await store_raw(rt, other, "1:2")
    await dead_letter(rt.broker, failed, routing_key=MAIL_RECEIVED, reason="unparseable mail")
    [entry] = await eventually(config_stack.rt.store.desk.search, what="the failed one")
    assert entry.ref == failed.raw_id and entry.error == "unparseable mail"
    raw = await rt.store.raw_emails.get(raw_id=msg.raw_id)
    assert raw.status == "processed" and raw.case_number == 10001
