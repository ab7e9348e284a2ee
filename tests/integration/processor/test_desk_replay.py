"""Replaying a filtered set from the desk: only the matching mails are processed, once each,
and every replay is audited; the rest stays on the desk."""

from __future__ import annotations

from typing import Any

import httpx

from services.processor.service import build as processor_service
from shared.broker import publish
from shared.runtime import Runtime
from shared.service import Stack
from shared.topology import MAIL_RECEIVED
from tests.e2e.conftest import ok
from tests.integration.processor.helpers import store_raw
from tests.support import eventually, make_mail, server_settings

SCRIPTS = ["size_limit", "bounce_handler", "auto_reply", "rate_limit", "reject_subject"]


async def test_replay_by_account_processes_only_that_accounts_mail(
    rt: Runtime, api: httpx.AsyncClient, rabbit_url: str, mongo_url: str, mongo_db_name: str
) -> None:
    rejecting = {
        "incoming_scripts": [{"name": n, "enabled": True} for n in [*SCRIPTS, "case_matcher"]],
        "reject_subject_pattern": "(?i)blocked",
    }
    version = (await ok(await api.patch("/settings/processor", json=rejecting)))["version"]
    processor = Stack(
        [processor_service],
        server_settings(
            rabbit_url=rabbit_url, mongo_url=mongo_url, database=mongo_db_name, instance="replay"
        ),
    )
    await processor.start()
    try:
        await eventually(lambda: _at(processor, version), what="the processor reloaded")
        mails = {}
        for account in ("support", "sales"):
            data, _ = make_mail(subject=f"Blocked for {account}", sender=f"{account}@example.org")
            mails[account] = await store_raw(rt, data, "1:1", account=account)
            await publish(rt.broker, mails[account], routing_key=MAIL_RECEIVED)

        async def both_on_desk() -> list[Any]:
            found = (await ok(await api.get("/failed"))) or []
            return found if len(found) == 2 else []

        await eventually(both_on_desk, what="both mails on the desk")
        version = (
            await ok(await api.patch("/settings/processor", json={"reject_subject_pattern": None}))
        )["version"]
        await eventually(lambda: _at(processor, version), what="the processor reloaded")

        replayed = await ok(await api.post("/failed/replay", params={"account": "sales"}))
        assert [r["failed_id"] for r in replayed] == [f"processor:{mails['sales'].raw_id}"]

        async def processed() -> bool:
            raw = await rt.store.raw_emails.get(raw_id=mails["sales"].raw_id)
            return raw.status == "processed"

        await eventually(processed, what="the replayed mail processed")
        assert await ok(await api.post("/failed/replay", params={"account": "sales"})) == []
        left = await ok(await api.get("/failed"))
        assert [e["account"] for e in left] == ["support"]
        assert (await rt.store.raw_emails.get(raw_id=mails["support"].raw_id)).status == "failed"
        audit = await ok(await api.get(f"/failed/processor:{mails['sales'].raw_id}/audit"))
        assert [(a["action"], a["outcome"], a["who"]) for a in audit] == [
            ("replay", "replayed", "api:admin")
        ]
        assert len(await rt.store.cases.recent()) == 1
    finally:
        await processor.stop()


async def _at(stack: Stack, version: int) -> bool:
    return stack.rt.config.version >= version
