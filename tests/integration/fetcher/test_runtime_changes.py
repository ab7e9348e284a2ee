"""Changing an account through the config service's API while the fetcher runs (both in one
process, as ``mailroom run all``) takes effect without a restart: deactivated, it stops
fetching and its connection is closed; re-activated, its mail flows again; a new folder or
password restarts its task with the new settings."""

from __future__ import annotations

import imaplib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from deploy.local.servers import Dovecot
from services.config.service import build as config_service
from services.fetcher.service import build as fetcher_service
from shared.service import Stack
from shared.store.account_health import AccountHealthRepo
from tests.integration.fetcher.helpers import PASSWORDS, server_flags
from tests.support import API_TOKEN, api_client, eventually, make_mail, server_settings

pytestmark = pytest.mark.integration

WRONG_PASSWORD = "live-box-wrong-password"
NAME = "live-box"


@pytest.fixture
async def stack(rabbit_url: str, mongo_url: str, mongo_db_name: str) -> AsyncIterator[Stack]:
    settings = server_settings(
        rabbit_url=rabbit_url, mongo_url=mongo_url, database=mongo_db_name, instance="live"
    )
    running = Stack([config_service, fetcher_service], settings)
    await running.start()
    yield running
    await running.stop()


def append_to(dovecot: Dovecot, user: str, folder: str, mail: bytes) -> None:
    """Create ``folder`` if needed and put ``mail`` into it."""
    with imaplib.IMAP4("127.0.0.1", dovecot.imap_port, timeout=30) as imap:
        imap.login(user, PASSWORDS[user])
        imap.create(folder)  # NO when it exists: fine
        imap.append(folder, None, None, mail)


def trace(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == f"mailroom.trace.{name}"]


async def test_deactivate_activate_and_change_take_effect_while_running(
    stack: Stack, dovecot: Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    for user in ("alice", "bob"):
        dovecot.reset_mailbox(user)
    rt = stack.rt
    health = AccountHealthRepo(rt.store.db)

    async def stored(name: str, count: int) -> bool:
        return await rt.store.raw_emails.count(account=name) == count

    def account_body(name: str, user: str) -> dict[str, Any]:
        return {
            "name": name,
            "protocol": "IMAP",
            "host": "127.0.0.1",
            "port": dovecot.imap_port,
            "username": user,
            "password": PASSWORDS[user],
            "ca_file": str(dovecot.cert_file),
            "debug": "yes",
        }

    async with api_client(stack, API_TOKEN) as api:

        async def change(name: str, **fields: Any) -> None:
            response = await api.patch(f"/accounts/{name}", json=fields)
            assert response.status_code == 200, response.text

        async def ok(response: httpx.Response) -> None:
            assert response.status_code in (200, 201), response.text

        await ok(await api.patch("/settings/settings", json={"poll_interval_seconds": 0.2}))
        await ok(await api.post("/accounts", json=account_body(NAME, "bob")))
        dovecot.deliver("bob", make_mail(subject="first")[0])
        await eventually(lambda: stored(NAME, 1), what="the first mail")

        # Deactivated: the task ends and closes its connection; new mail stays on the server.
        closed = trace(caplog, NAME).count("* connection closed")
        await change(NAME, enabled=False)
        await eventually(
            lambda: _true(trace(caplog, NAME).count("* connection closed") > closed),
            what="the connection closed",
        )
        lines_after_close = len(trace(caplog, NAME))
        dovecot.deliver("bob", make_mail(subject="while off")[0])
        # A witness account started after the deactivation fetches its mail: by then a
        # running live-box task would have taken the mail just delivered too.
        await ok(await api.post("/accounts", json=account_body("witness", "alice")))
        dovecot.deliver("alice", make_mail(subject="witness")[0])
        await eventually(lambda: stored("witness", 1), what="the witness's mail")
        assert await stored(NAME, 1)
        assert "\\Seen" not in server_flags(dovecot, "bob")[2]  # not even flagged
        assert len(trace(caplog, NAME)) == lines_after_close  # not one line since

        await change(NAME, enabled=True)
        await eventually(lambda: stored(NAME, 2), what="the mail delivered while off")

        # A new folder: the task restarts and selects it.
        append_to(dovecot, "bob", "Support", make_mail(subject="in support")[0])
        await change(NAME, folder="Support")
        await eventually(lambda: stored(NAME, 3), what="the mail in Support")
        assert any(
            line.startswith("C ") and 'SELECT "Support"' in line for line in trace(caplog, NAME)
        )

        # A wrong password: the restarted task logs in with it and is refused; the right
        # one again: mail flows again.
        await change(NAME, password=WRONG_PASSWORD)

        async def refused() -> bool:
            error = (await health.get(account=NAME)).last_auth_error or ""
            return "login refused for bob@" in error

        await eventually(refused, what="the refusal of the new password")
        await change(NAME, password=PASSWORDS["bob"])
        append_to(dovecot, "bob", "Support", make_mail(subject="after the fix")[0])
        await eventually(lambda: stored(NAME, 4), what="mail after the password fix")

    assert WRONG_PASSWORD not in caplog.text and PASSWORDS["bob"] not in caplog.text


async def _true(value: bool) -> bool:
    return value
