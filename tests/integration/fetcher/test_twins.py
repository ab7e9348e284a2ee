"""The same mail under a new source key (after a UIDVALIDITY change, or twice in one fetch)
is caught by Message-ID + sha256: stored once, announced once, still flagged on the server."""

from __future__ import annotations

import asyncio

import pytest

from deploy.local.servers import Dovecot
from services.fetcher.deps import FetcherDeps
from services.fetcher.ingest import fetch_once
from shared.runtime import Runtime
from tests.integration.fetcher.conftest import MailboxMaker
from tests.integration.fetcher.helpers import account, announced, append, server_flags, tricky_mail

pytestmark = pytest.mark.integration


async def test_mails_seen_again_after_a_uidvalidity_change_are_not_stored_twice(
    rt: Runtime, bob: Dovecot, open_mailbox: MailboxMaker
) -> None:
    mails = [tricky_mail(n) for n in range(3)]
    append(bob, "bob", *mails)
    acc = account(bob, "bob", after_fetch="seen")
    mailbox = open_mailbox(acc)
    assert await fetch_once(FetcherDeps.of(rt), acc, mailbox) == 3
    await announced(rt)
    # A crash had left one of them stored but never announced.
    stuck = (await rt.store.raw_emails.recent(limit=1))[0]
    await rt.store.raw_emails.set_status(raw_id=stuck.id, status="stored")

    await asyncio.sleep(1.1)  # Dovecot's UIDVALIDITY is the clock's second
    bob.reset_mailbox("bob")
    append(bob, "bob", *mails, tricky_mail(9))
    assert await fetch_once(FetcherDeps.of(rt), acc, mailbox) == 1  # only the new one

    assert await rt.store.raw_emails.count(account=acc.name) == 4
    stored = await rt.store.raw_emails.recent(account=acc.name)
    new = next(r for r in stored if r.message_id == "<tricky-9@example.org>")
    # The stuck twin is announced now, once; the others were announced before.
    assert sorted(m.raw_id for m in await announced(rt)) == sorted([stuck.id, new.id])
    assert (await rt.store.raw_emails.get(raw_id=stuck.id)).status == "announced"
    assert set(server_flags(bob, "bob").values()) == {"\\Seen"}


async def test_the_same_mail_twice_in_one_fetch_is_stored_once(
    rt: Runtime, bob: Dovecot, open_mailbox: MailboxMaker
) -> None:
    append(bob, "bob", tricky_mail(1), tricky_mail(1), tricky_mail(2))
    acc = account(bob, "bob", after_fetch="delete")
    assert await fetch_once(FetcherDeps.of(rt), acc, open_mailbox(acc)) == 2
    assert await rt.store.raw_emails.count(account=acc.name) == 2
    assert len(await announced(rt)) == 2
    assert server_flags(bob, "bob") == {}  # the twin is deleted like the others
