"""Per-account fetch options on the real Dovecot: POP3 keeping mail (``after_fetch`` seen: mail
stays in the maildrop, each UIDL is fetched once and remembered in the adapter's cursor), IMAP
moving fetched mail to a folder, and the account's own poll interval overriding the global
one."""

from __future__ import annotations

import imaplib
import json
import poplib
import ssl
from collections.abc import AsyncIterator, Sequence

import pytest

from deploy.local.servers import Dovecot
from services.fetcher.deps import FetcherDeps
from services.fetcher.ingest import fetch_once
from services.fetcher.supervisor import Backoff, Supervisor
from shared.mailbox import FetchedMail, Mailbox, MessageRef
from shared.mailbox.probe import check_connection
from shared.models.config import GlobalSettings
from shared.runtime import Runtime
from tests.integration.fetcher.conftest import MailboxMaker
from tests.integration.fetcher.helpers import PASSWORDS, account, announced, append, tricky_mail
from tests.support import eventually

pytestmark = pytest.mark.integration


def maildrop(dovecot: Dovecot, user: str, *, delete: int | None = None) -> int:
    """Messages in the user's maildrop (POP3S); ``delete`` removes that message number."""
    context = ssl.create_default_context(cafile=str(dovecot.cert_file))
    pop = poplib.POP3_SSL("127.0.0.1", dovecot.pop3s_port, context=context, timeout=30)
    try:
        pop.user(user)
        pop.pass_(PASSWORDS[user])
        if delete is not None:
            pop.dele(delete)
        count, _ = pop.stat()
        return int(count)
    finally:
        pop.quit()


class Counting:
    """The real mailbox, counting the messages it was asked to fetch (POP3 RETR)."""

    def __init__(self, inner: Mailbox) -> None:
        self.inner = inner
        self.fetched: list[str] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def fetch(
        self, refs: Sequence[MessageRef], *, max_size: int | None = None
    ) -> AsyncIterator[FetchedMail]:
        self.fetched.extend(ref.source_key for ref in refs)
        async for mail in self.inner.fetch(refs, max_size=max_size):
            yield mail


async def taken(rt: Runtime, name: str) -> list[str]:
    """The UIDLs the POP3 cursor holds (taken and left on the server)."""
    state = await rt.store.fetch_state.get(account=name, folder="INBOX")
    return list(json.loads(state.cursor)["taken"]) if state.cursor else []


async def test_pop3_keeping_mail_fetches_each_uidl_once_and_keeps_the_mail(
    rt: Runtime, dovecot: Dovecot, open_mailbox: MailboxMaker
) -> None:
    dovecot.reset_mailbox("alice")
    append(dovecot, "alice", tricky_mail(1), tricky_mail(2))
    acc = account(dovecot, protocol="POP3S", after_fetch="seen")
    counting = Counting(open_mailbox(acc))
    mailbox: Mailbox = counting  # type: ignore[assignment]

    assert await fetch_once(FetcherDeps.of(rt), acc, mailbox) == 2
    await mailbox.close()
    assert maildrop(dovecot, "alice") == 2  # left on the server
    assert len(await taken(rt, acc.name)) == 2 and len(counting.fetched) == 2

    assert await fetch_once(FetcherDeps.of(rt), acc, mailbox) == 0
    await mailbox.close()
    assert len(counting.fetched) == 2  # nothing fetched again

    append(dovecot, "alice", tricky_mail(3))
    assert await fetch_once(FetcherDeps.of(rt), acc, mailbox) == 1
    await mailbox.close()
    assert len(counting.fetched) == 3 and len(await taken(rt, acc.name)) == 3
    assert len(await announced(rt)) == 3  # each mail announced once
    assert await rt.store.raw_emails.count(account=acc.name) == 3

    # A round that stopped after announcing and before its cursor write: the mail is
    # fetched once more, but neither stored nor announced again, and then remembered.
    cursor = json.dumps({"taken": (await taken(rt, acc.name))[:-1]})
    await rt.store.fetch_state.save_cursor(account=acc.name, folder="INBOX", cursor=cursor)
    assert await fetch_once(FetcherDeps.of(rt), acc, mailbox) == 0
    await mailbox.close()
    assert len(await taken(rt, acc.name)) == 3 and len(counting.fetched) == 4
    assert await announced(rt) == []
    assert await rt.store.raw_emails.count(account=acc.name) == 3

    # A mail deleted by another client is forgotten: the list is as long as the maildrop.
    assert maildrop(dovecot, "alice", delete=1) == 2
    assert await fetch_once(FetcherDeps.of(rt), acc, mailbox) == 0
    await mailbox.close()
    assert len(await taken(rt, acc.name)) == 2 and len(counting.fetched) == 4


async def test_pop3_deletes_by_default(
    rt: Runtime, dovecot: Dovecot, open_mailbox: MailboxMaker
) -> None:
    dovecot.reset_mailbox("alice")
    append(dovecot, "alice", tricky_mail(1))
    acc = account(dovecot, protocol="POP3S")
    mailbox = open_mailbox(acc)

    assert await fetch_once(FetcherDeps.of(rt), acc, mailbox) == 1
    await mailbox.close()

    assert maildrop(dovecot, "alice") == 0
    assert await taken(rt, acc.name) == []


async def test_an_accounts_poll_interval_overrides_the_global_one(
    rt: Runtime, dovecot: Dovecot
) -> None:
    for user in ("alice", "bob"):
        dovecot.reset_mailbox(user)
    # POP3 has no push: only polling brings new mail.
    fast = account(dovecot, "alice", name="fast", protocol="POP3S", poll_interval_seconds=0.2)
    slow = account(dovecot, "bob", name="slow", protocol="POP3S")
    rt.config = rt.config.model_copy(
        update={
            "accounts": {fast.name: fast, slow.name: slow},
            "settings": GlobalSettings(poll_interval_seconds=600),
        }
    )
    supervisor = Supervisor(FetcherDeps.of(rt), backoff=Backoff(base=0.01, cap=0.05))
    await supervisor.start()
    try:
        # Both accounts had their first round (an empty maildrop) before the mail arrives.
        await eventually(
            lambda: _rounds(rt, ("fast", "slow")), what="a first round of each account"
        )
        append(dovecot, "alice", tricky_mail(1))
        append(dovecot, "bob", tricky_mail(2))
        await eventually(lambda: rt.store.raw_emails.count(account="fast"), what="fast's mail")
        assert await rt.store.raw_emails.count(account="slow") == 0  # waits its 600 s
    finally:
        await supervisor.stop()


async def _rounds(rt: Runtime, names: tuple[str, ...]) -> bool:
    """Whether each account finished a fetch round (its health has a last fetch)."""
    for name in names:
        health = await rt.store.account_health.get(account=name)
        if health.last_fetch_at is None:
            return False
    return True


def folder_flags(dovecot: Dovecot, user: str, folder: str) -> list[str]:
    """The flags of each mail in ``folder`` (IMAP), creating the folder if it is missing."""
    imap = imaplib.IMAP4("127.0.0.1", dovecot.imap_port, timeout=30)
    try:
        imap.login(user, PASSWORDS[user])
        imap.create(folder)  # NO when it exists: fine
        imap.select(folder, readonly=True)
        _, data = imap.uid("FETCH", "1:*", "(FLAGS)")
    finally:
        imap.logout()
    return [item.decode() for item in data if isinstance(item, bytes)]


async def test_imap_moves_fetched_mail_to_the_chosen_folder(
    rt: Runtime, dovecot: Dovecot, open_mailbox: MailboxMaker
) -> None:
    dovecot.reset_mailbox("alice")
    assert folder_flags(dovecot, "alice", "Done") == []
    append(dovecot, "alice", tricky_mail(1), tricky_mail(2))
    acc = account(dovecot, after_fetch="move", move_to_folder="Done")

    assert await fetch_once(FetcherDeps.of(rt), acc, open_mailbox(acc)) == 2
    assert len(await announced(rt)) == 2
    assert folder_flags(dovecot, "alice", "INBOX") == []
    moved = folder_flags(dovecot, "alice", "Done")
    assert len(moved) == 2 and all("\\Seen" in flags for flags in moved)

    # The connection test refuses a folder that is not there, naming the field.
    missing = acc.model_copy(update={"move_to_folder": "Nope"})
    report = await check_connection(missing, timeout=10)
    assert not report.ok and report.error is not None
    assert "move_to_folder 'Nope' does not exist" in report.error
    assert (await check_connection(acc, timeout=10)).ok
