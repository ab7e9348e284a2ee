"""The fetcher service on real servers, configured through system properties: it follows
every reload, and a broken account never holds up a working one."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from deploy.local.servers import Dovecot
from services.fetcher.service import build
from shared.config_views import ACCOUNTS_MODULE, seal_secrets
from shared.models.config import IncomingAccount
from shared.runtime import Runtime
from tests.integration.fetcher.helpers import account, announced, server_flags
from tests.support import eventually, make_mail

pytestmark = pytest.mark.integration

WRONG_PASSWORD = "not-alices-password"


async def put(rt: Runtime, module: str, key: str, value: Any) -> None:
    """Write a property as the config service would, then reload like a broadcast does."""
    await rt.store.properties.put(module=module, key=key, value=value, who="test")
    await rt.reload_config()


async def put_account(rt: Runtime, acc: IncomingAccount) -> None:
    await put(rt, ACCOUNTS_MODULE, acc.name, seal_secrets(acc.model_dump(exclude={"name"}), rt.box))


async def stored(rt: Runtime, count: int) -> bool:
    records = await rt.store.raw_emails.recent()
    return len(records) == count and all(r.status == "announced" for r in records)


async def released(rt: Runtime, account_name: str) -> bool:
    lease = await rt.store.leases.get(account=account_name)
    return lease is not None and lease.owner is None


async def seen_only(dovecot: Dovecot) -> bool:
    return server_flags(dovecot, "bob") == {1: "\\Seen"}


async def refused(caplog: pytest.LogCaptureFixture) -> bool:
    return "login refused for alice@127.0.0.1" in caplog.text


async def test_service_fetches_follows_reloads_and_isolates_failures(
    rt: Runtime, dovecot: Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    dovecot.reset_mailbox("bob")
    await put(rt, "settings", "poll_interval_seconds", 0.2)
    good = account(dovecot, "bob", name="sales", protocol="IMAPS")
    await put_account(rt, good)
    await put_account(rt, account(dovecot, "alice", name="broken", password=WRONG_PASSWORD))
    service = build(rt)
    assert service.start is not None and service.stop is not None

    with caplog.at_level(logging.INFO):
        await service.start()
        try:
            first, _ = make_mail(subject="first")
            dovecot.deliver("bob", first)
            await eventually(lambda: stored(rt, 1), what="the first mail stored and announced")
            # Flagging follows the announcement in the same round: wait for it, don't race it.
            await eventually(lambda: seen_only(dovecot), what="the first mail flagged \\Seen")

            await put_account(rt, good.model_copy(update={"enabled": False}))
            # The lease is given up only once the account's task has stopped.
            await eventually(lambda: released(rt, "sales"), what="the disabled account let go")
            second, _ = make_mail(subject="second")
            dovecot.deliver("bob", second)
            assert await rt.store.raw_emails.count() == 1  # disabled: not fetched

            await put_account(rt, good)
            await eventually(lambda: stored(rt, 2), what="the second mail after re-enabling")
            # Dovecot answers a wrong password only after its auth failure delay.
            await eventually(lambda: refused(caplog), what="the broken account's login refused")
        finally:
            await service.stop()

    assert len(await announced(rt)) == 2
    assert "login refused for alice@127.0.0.1" in caplog.text
    assert WRONG_PASSWORD not in caplog.text
