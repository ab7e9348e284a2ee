"""Crash tests: a real fetcher process (``faststream run services.fetcher.app:app``) is killed
with SIGKILL at several points of its work, then a new one finishes the job. Afterwards every
mail is stored exactly once, every stored mail was announced, and the mailbox is empty.

No test hook inside the fetcher: the kill follows an observation from outside (the first
stored record, the first announced record, the first message in the queue, the first mail
gone from the server), which puts the process after store, after publish and before or
after delete. Which instant the process was really at does not change what must hold.
"""

from __future__ import annotations

import asyncio
import imaplib
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import aio_pika
import pytest
from pydantic import SecretStr

from deploy.local.servers import Dovecot
from services.config.properties import put_account, set_fields
from shared.runtime import Runtime
from shared.topology import PROCESSOR_INBOUND
from tests.integration.fetcher.helpers import PASSWORDS, account, announced, append
from tests.support import eventually, make_mail, start_service

pytestmark = [pytest.mark.integration, pytest.mark.long]

MAILS = 600
LEASE_SECONDS = 3.0
FETCHER_APP = "services.fetcher.app:app"


def mailbox_count(dovecot: Dovecot, user: str) -> int:
    imap = imaplib.IMAP4("127.0.0.1", dovecot.imap_port, timeout=30)
    try:
        imap.login(user, PASSWORDS[user])
        _, data = imap.select("INBOX")
        return int(data[0] or 0)
    finally:
        imap.logout()


async def queue_depth(rt: Runtime) -> int:
    """Messages in the inbound queue now (FastStream caches declarations: ask afresh)."""
    url = rt.settings.broker_url
    connection = await aio_pika.connect(
        url.get_secret_value() if isinstance(url, SecretStr) else str(url)
    )
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(PROCESSOR_INBOUND.name, passive=True)
        return int(queue.declaration_result.message_count or 0)


async def first_stored(rt: Runtime, dovecot: Dovecot) -> bool:
    return await rt.store.raw_emails.count() > 0


async def first_announced(rt: Runtime, dovecot: Dovecot) -> bool:
    return bool(await rt.store.raw_emails.recent(status="announced", limit=1))


async def first_published(rt: Runtime, dovecot: Dovecot) -> bool:
    return await queue_depth(rt) > 0


async def first_deleted(rt: Runtime, dovecot: Dovecot) -> bool:
    return await asyncio.to_thread(mailbox_count, dovecot, "bob") < MAILS


@pytest.mark.parametrize(
    ("protocol", "kill_when"),
    [
        ("IMAP", first_stored),
        ("IMAP", first_published),
        ("IMAP", first_announced),
        ("IMAP", first_deleted),
        ("POP3", first_announced),  # DELE is committed only by QUIT, which never comes
    ],
    ids=["after-store", "after-publish", "before-delete", "after-delete", "pop3-before-quit"],
)
async def test_killed_fetcher_loses_nothing_and_stores_nothing_twice(
    rt: Runtime,
    dovecot: Dovecot,
    tmp_path: Path,
    protocol: str,
    kill_when: Callable[[Runtime, Dovecot], Awaitable[bool]],
) -> None:
    dovecot.reset_mailbox("bob")
    mails = [make_mail(subject=f"crash {n}", body="x" * 800 + "\n") for n in range(MAILS)]
    append(dovecot, "bob", *(raw for raw, _ in mails))
    acc = account(dovecot, "bob", name="crashbox", protocol=protocol, after_fetch="delete")
    fields = acc.model_dump(exclude={"name"}) | {"password": PASSWORDS["bob"]}
    # The second fetcher takes over once the killed one's lease lapses: a short lease keeps
    # that wait from being most of the test.
    await set_fields(
        rt,
        module="settings",
        values={"poll_interval_seconds": 0.5, "fetcher_lease_seconds": LEASE_SECONDS},
        who="test",
    )
    await put_account(rt, name=acc.name, fields=fields, who="test", create=True)

    first = start_service(rt.settings, FETCHER_APP, tmp_path, "fetcher-1")
    try:

        async def observed() -> bool:
            return await kill_when(rt, dovecot)

        await eventually(observed, timeout=60, what=kill_when.__name__)
        first.send_signal(signal.SIGKILL)
    finally:
        if first.poll() is None:
            first.kill()
        first.wait(timeout=30)

    second = start_service(rt.settings, FETCHER_APP, tmp_path, "fetcher-2")
    try:

        async def drained() -> bool:
            empty = await asyncio.to_thread(mailbox_count, dovecot, "bob") == 0
            pending = await rt.store.raw_emails.recent(status="stored", limit=1)
            return empty and not pending

        await eventually(drained, timeout=120, what="the second fetcher to drain the mailbox")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)

    stored = await rt.store.raw_emails.recent(account=acc.name, limit=10 * MAILS)
    assert len(stored) == MAILS  # each mail exactly once
    assert {r.message_id for r in stored} == {mid for _, mid in mails}
    # Every stored mail was announced; a repeat is allowed (the processor is idempotent).
    announced_ids = {m.raw_id for m in await announced(rt)}
    assert announced_ids == {r.id for r in stored}
    assert {r.status for r in stored} == {"announced"}
    for name in ("fetcher-1", "fetcher-2"):
        assert PASSWORDS["bob"] not in (tmp_path / f"{name}.log").read_text()
