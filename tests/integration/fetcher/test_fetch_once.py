"""fetch_once on real Dovecot, MongoDB and RabbitMQ: each mail stored and announced once,
then flagged or deleted; a crash at each step repeated without loss or duplicate.

A crash is simulated by an error at that step: fetch_once stops there exactly as a killed
process would, and the next round starts from what MongoDB and the server hold.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence

import pytest

from deploy.local.servers import Dovecot
from services.fetcher import ingest
from services.fetcher.deps import FetcherDeps
from services.fetcher.ingest import fetch_once
from shared.broker import publish_many as real_publish
from shared.errors import Transient
from shared.mailbox import Disposal, Guard, ImapMailbox, MessageRef, unguarded
from shared.runtime import Runtime
from tests.integration.fetcher.conftest import MailboxMaker
from tests.integration.fetcher.helpers import (
    account,
    announced,
    append,
    imap_position,
    server_flags,
    tricky_mail,
    uid_of,
)
from tests.support import make_mail

pytestmark = pytest.mark.integration


async def test_keep_mode_stores_announces_and_flags_each_mail_once(
    rt: Runtime, bob: Dovecot, open_mailbox: MailboxMaker
) -> None:
    mails = [tricky_mail(n) for n in range(3)]
    append(bob, "bob", *mails)
    acc = account(bob, "bob", after_fetch="seen")
    mailbox = open_mailbox(acc)

    assert await fetch_once(FetcherDeps.of(rt), acc, mailbox) == 3

    stored = sorted(
        await rt.store.raw_emails.recent(account=acc.name), key=lambda r: uid_of(r.source_key)
    )
    uidvalidity = int(stored[0].source_key.split(":")[0])
    assert [r.source_key for r in stored] == [f"{uidvalidity}:{uid}" for uid in (1, 2, 3)]
    assert [r.message_id for r in stored] == [f"<tricky-{n}@example.org>" for n in range(3)]
    assert [r.sha256 for r in stored] == [hashlib.sha256(m).hexdigest() for m in mails]
    assert [r.size for r in stored] == [len(m) for m in mails]
    assert {r.status for r in stored} == {"announced"}
    assert {r.folder for r in stored} == {"INBOX"}
    for record, mail in zip(stored, mails, strict=True):
        assert await rt.store.raw_emails.data(raw_id=record.id) == mail

    messages = await announced(rt)
    assert sorted(m.raw_id for m in messages) == sorted(r.id for r in stored)
    by_id = {r.id: r for r in stored}
    for message in messages:
        assert message.account == acc.name
        assert message.source_key == by_id[message.raw_id].source_key
        assert message.correlation_id == by_id[message.raw_id].correlation_id

    assert server_flags(bob, "bob") == {1: "\\Seen", 2: "\\Seen", 3: "\\Seen"}
    assert await imap_position(rt, acc) == (uidvalidity, 3)

    assert await fetch_once(FetcherDeps.of(rt), acc, mailbox) == 0
    assert await announced(rt) == []
    assert await rt.store.raw_emails.count() == 3


async def test_delete_mode_empties_the_mailbox_after_storing(
    rt: Runtime, bob: Dovecot, open_mailbox: MailboxMaker
) -> None:
    for n in range(2):
        mail, _ = make_mail(subject=f"delete me {n}")
        bob.deliver("bob", mail)
    acc = account(bob, "bob", protocol="IMAPS", after_fetch="delete")
    assert await fetch_once(FetcherDeps.of(rt), acc, open_mailbox(acc)) == 2
    assert server_flags(bob, "bob") == {}
    assert len(await announced(rt)) == 2
    assert await rt.store.raw_emails.count() == 2


async def test_the_global_default_decides_when_the_account_inherits(
    rt: Runtime, bob: Dovecot, open_mailbox: MailboxMaker
) -> None:
    append(bob, "bob", tricky_mail(1))
    rt.config = rt.config.model_copy(
        update={"settings": rt.config.settings.model_copy(update={"delete_read_messages": True})}
    )
    acc = account(bob, "bob", after_fetch="inherit")
    assert await fetch_once(FetcherDeps.of(rt), acc, open_mailbox(acc)) == 1
    assert server_flags(bob, "bob") == {}


async def test_crash_between_store_and_publish_announces_exactly_once(
    rt: Runtime, bob: Dovecot, open_mailbox: MailboxMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    append(bob, "bob", tricky_mail(1))
    acc = account(bob, "bob")
    mailbox = open_mailbox(acc)
    calls = 0

    async def publish_failing_once(*args: object, **kwargs: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise Transient("broker gone")
        await real_publish(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest, "publish_many", publish_failing_once)
    with pytest.raises(Transient, match="broker gone"):
        await fetch_once(FetcherDeps.of(rt), acc, mailbox)
    [record] = await rt.store.raw_emails.recent()
    assert record.status == "stored"
    assert await announced(rt) == []
    assert server_flags(bob, "bob") == {1: ""}  # not let go before it was announced
    assert await imap_position(rt, acc) is None  # the cursor never moved

    # Stored before: not created again.
    assert await fetch_once(FetcherDeps.of(rt), acc, mailbox) == 0
    [message] = await announced(rt)
    assert message.raw_id == record.id and message.correlation_id == record.correlation_id
    assert (await rt.store.raw_emails.get(raw_id=record.id)).status == "announced"
    assert await rt.store.raw_emails.count() == 1
    assert server_flags(bob, "bob") == {1: "\\Seen"}

    assert await fetch_once(FetcherDeps.of(rt), acc, mailbox) == 0
    assert await announced(rt) == []


class FlaggingFailsOnce(ImapMailbox):
    """The real mailbox, except that the first mark_done fails (a crash after announcing)."""

    failed = False

    async def mark_done(
        self, refs: Sequence[MessageRef], *, disposal: Disposal, guard: Guard = unguarded
    ) -> None:
        if not self.failed:
            self.failed = True
            raise Transient("connection lost before STORE")
        await super().mark_done(refs, disposal=disposal, guard=guard)


async def test_crash_between_publish_and_flagging_neither_repeats_nor_loses(
    rt: Runtime, bob: Dovecot
) -> None:
    append(bob, "bob", tricky_mail(1), tricky_mail(2))
    acc = account(bob, "bob")
    mailbox = FlaggingFailsOnce(acc, timeout=10)
    try:
        with pytest.raises(Transient):
            await fetch_once(FetcherDeps.of(rt), acc, mailbox)
        assert len(await announced(rt)) == 2
        assert server_flags(bob, "bob") == {1: "", 2: ""}

        assert await fetch_once(FetcherDeps.of(rt), acc, mailbox) == 0
        assert await announced(rt) == []
        assert server_flags(bob, "bob") == {1: "\\Seen", 2: "\\Seen"}
        position = await imap_position(rt, acc)
        assert position is not None and position[1] == 2
    finally:
        await mailbox.close()


async def test_a_new_uidvalidity_fetches_the_renumbered_folder_from_the_start(
    rt: Runtime, bob: Dovecot, open_mailbox: MailboxMaker, caplog: pytest.LogCaptureFixture
) -> None:
    append(bob, "bob", *(tricky_mail(n) for n in range(3)))
    acc = account(bob, "bob")
    mailbox = open_mailbox(acc)
    assert await fetch_once(FetcherDeps.of(rt), acc, mailbox) == 3
    old = await imap_position(rt, acc)

    # Dovecot derives UIDVALIDITY from the clock: let a second pass, then recreate the
    # folder. Its first message gets UID 1 again, below the old mark of 3.
    await asyncio.sleep(1.1)
    bob.reset_mailbox("bob")
    with caplog.at_level(logging.WARNING, logger="shared.mailbox.imap"):
        assert await fetch_once(FetcherDeps.of(rt), acc, mailbox) == 0  # the new, empty folder
        append(bob, "bob", tricky_mail(7))
        assert await fetch_once(FetcherDeps.of(rt), acc, mailbox) == 1
    assert len([r for r in caplog.records if "UIDVALIDITY" in r.getMessage()]) == 1

    new = await imap_position(rt, acc)
    assert old is not None and new is not None
    assert new[0] != old[0] and new[1] == 1
    newest = [
        r for r in await rt.store.raw_emails.recent() if r.source_key.startswith(f"{new[0]}:")
    ]
    assert [(r.source_key, r.message_id) for r in newest] == [
        (f"{new[0]}:1", "<tricky-7@example.org>")
    ]
    assert len(await announced(rt)) == 4


async def test_many_mails_in_several_batches(
    rt: Runtime, bob: Dovecot, open_mailbox: MailboxMaker
) -> None:
    count = ingest.BATCH_SIZE * 2 + 17
    append(bob, "bob", *(tricky_mail(n) for n in range(count)))
    acc = account(bob, "bob", after_fetch="delete")
    assert await fetch_once(FetcherDeps.of(rt), acc, open_mailbox(acc)) == count
    position = await imap_position(rt, acc)
    assert position is not None
    uidvalidity = position[0]
    # Announced in the order the mails arrived: a reply is not processed before its original.
    keys = [m.source_key for m in await announced(rt)]
    assert keys == [f"{uidvalidity}:{uid}" for uid in range(1, count + 1)]
    assert server_flags(bob, "bob") == {}
    assert position[1] == count


async def test_a_position_stored_before_the_seam_resumes_without_fetching_again(
    rt: Runtime, bob: Dovecot, open_mailbox: MailboxMaker
) -> None:
    append(bob, "bob", *(tricky_mail(n) for n in range(3)))
    acc = account(bob, "bob", after_fetch="seen")
    mailbox = open_mailbox(acc)
    status = await mailbox.connect()
    # What a fetcher before the seam left after taking UIDs 1 and 2.
    await rt.store.db["fetch_state"].insert_one(
        {
            "account": acc.name,
            "folder": "INBOX",
            "uidvalidity": status.uidvalidity,
            "last_uid": 2,
            "renumbered": False,
            "uidls": [],
        }
    )

    assert await fetch_once(FetcherDeps.of(rt), acc, mailbox) == 1
    [record] = await rt.store.raw_emails.recent(account=acc.name)
    assert record.source_key == f"{status.uidvalidity}:3"
    assert await imap_position(rt, acc) == (status.uidvalidity, 3)
    doc = await rt.store.db["fetch_state"].find_one({"account": acc.name}, {"_id": 0})
    assert doc is not None and not {"uidvalidity", "last_uid", "uidls"} & doc.keys()
