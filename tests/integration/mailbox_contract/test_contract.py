"""The mailbox contract, proved once for every transport (``SERVERS``): each delivered mail is
stored once and announced once, let go on the server only after both, the cursor resumes, a
kill at any step loses nothing and makes no duplicate case, big mail streams through, and a
mail over the size limit becomes a stub that stays on the server.

A kill is simulated by an error at that step: fetch_once stops there as a killed process
would, its session is dropped, and a new session (a new fetcher) starts from what MongoDB and
the server hold. The real SIGKILL of a fetcher process is in tests/integration/fetcher/
test_crash.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

from services.fetcher import ingest
from services.fetcher.deps import FetcherDeps
from services.fetcher.ingest import fetch_once
from services.processor.process import process_mail
from shared.mailbox import FetchedMail, Mailbox, MessageRef, open_mailbox
from shared.models.config import GlobalSettings, IncomingAccount
from shared.models.messages import MailReceived
from shared.runtime import Runtime
from tests.integration.fetcher.helpers import announced
from tests.integration.mailbox_contract.contract import ContractServer

pytestmark = pytest.mark.integration


class Killed(Exception):
    """The simulated kill of the fetcher."""


def mail(n: int, *, body: bytes = b"") -> bytes:
    """Mail number ``n`` with Message-ID ``<contract-n@example.org>``."""
    return (
        b"From: Customer <customer%d@example.org>\r\n"
        b"To: support@example.com\r\n"
        b"Subject: contract %d\r\n"
        b"Message-ID: <contract-%d@example.org>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"\r\n"
        b"Hello %d\r\n" % (n, n, n, n)
    ) + body


def ids(*numbers: int) -> set[str]:
    return {f"<contract-{n}@example.org>" for n in numbers}


class Counting:
    """The adapter, recording what it was asked to fetch and when it marked what done."""

    def __init__(self, inner: Mailbox) -> None:
        self.inner = inner
        self.fetched: list[str] = []
        self.done: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def fetch(
        self, refs: Sequence[MessageRef], *, max_size: int | None = None
    ) -> AsyncIterator[FetchedMail]:
        self.fetched.extend(ref.source_key for ref in refs)
        async for fetched in self.inner.fetch(refs, max_size=max_size):
            yield fetched

    async def mark_done(self, refs: Sequence[MessageRef], **kwargs: Any) -> None:
        self.done.extend(ref.source_key for ref in refs)
        await self.inner.mark_done(refs, **kwargs)


async def drain(rt: Runtime, acc: IncomingAccount, mailbox: Mailbox | None = None) -> int:
    """Fetch rounds until one stores nothing new; a new session unless ``mailbox``."""
    box = mailbox or open_mailbox(acc, timeout=30)
    stored = 0
    try:
        while (new := await fetch_once(FetcherDeps.of(rt), acc, box)) > 0:
            stored += new
    finally:
        if mailbox is None:
            await box.close()
    return stored


async def stored_ids(rt: Runtime, acc: IncomingAccount) -> list[str | None]:
    return [r.message_id for r in await rt.store.raw_emails.recent(account=acc.name, limit=1000)]


@pytest.mark.parametrize("keep", [True, False], ids=["keep", "delete"])
async def test_every_mail_is_stored_once_announced_once_then_let_go(
    rt: Runtime, contract: ContractServer, keep: bool
) -> None:
    for n in range(3):
        await contract.deliver(mail(n))
    acc = contract.account(keep=keep)
    box = Counting(open_mailbox(acc, timeout=30))
    mailbox: Mailbox = box
    try:
        assert await fetch_once(FetcherDeps.of(rt), acc, mailbox) == 3
        assert await fetch_once(FetcherDeps.of(rt), acc, mailbox) == 0
    finally:
        await box.close()

    stored = await rt.store.raw_emails.recent(account=acc.name)
    assert sorted(r.message_id or "" for r in stored) == sorted(ids(0, 1, 2))
    assert {r.status for r in stored} == {"announced"}
    messages = await announced(rt)
    assert sorted(m.raw_id for m in messages) == sorted(r.id for r in stored)
    assert sorted(box.done) == sorted(r.source_key for r in stored)
    remaining = await contract.remaining()
    if keep:
        assert {r.message_id for r in remaining} == ids(0, 1, 2)
        assert all(r.seen for r in remaining)
    else:
        assert remaining == []


async def test_disposal_comes_only_after_storing_and_announcing(
    rt: Runtime, contract: ContractServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    await contract.deliver(mail(1))
    acc = contract.account()
    box = Counting(open_mailbox(acc, timeout=30))
    mailbox: Mailbox = box
    seen_at_disposal: list[tuple[int, int]] = []
    inner = box.mark_done

    async def checking(refs: Sequence[MessageRef], **kwargs: Any) -> None:
        records = await rt.store.raw_emails.recent(account=acc.name)
        announced_now = [r for r in records if r.status == "announced"]
        seen_at_disposal.append((len(records), len(announced_now)))
        await inner(refs, **kwargs)

    monkeypatch.setattr(box, "mark_done", checking)
    try:
        assert await fetch_once(FetcherDeps.of(rt), acc, mailbox) == 1
    finally:
        await box.close()
    assert seen_at_disposal == [(1, 1)]
    assert len(await announced(rt)) == 1


async def test_the_cursor_resumes_where_it_stopped(rt: Runtime, contract: ContractServer) -> None:
    await contract.deliver(mail(1))
    await contract.deliver(mail(2))
    acc = contract.account(keep=True)
    first = Counting(open_mailbox(acc, timeout=30))
    assert await drain(rt, acc, first) == 2
    await first.close()
    assert len(first.fetched) == 2

    await contract.deliver(mail(3))
    second = Counting(open_mailbox(acc, timeout=30))  # a new session: only the cursor carries
    try:
        assert await drain(rt, acc, second) == 1
    finally:
        await second.close()
    assert len(second.fetched) == 1  # nothing fetched again
    assert len(await announced(rt)) == 3
    assert {r.message_id for r in await contract.remaining()} == ids(1, 2, 3)


CrashPoint = Callable[[pytest.MonkeyPatch, Runtime, Mailbox], None]


def _call_killed(
    owner: object, name: str, monkeypatch: pytest.MonkeyPatch, *, call: int = 2
) -> None:
    """Make the ``call``-th call of ``owner.name`` (by default the second batch's) kill the
    round."""
    real = getattr(owner, name)
    calls = 0

    async def killing(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == call:
            raise Killed(name)
        return await real(*args, **kwargs)

    monkeypatch.setattr(owner, name, killing)


def after_store(monkeypatch: pytest.MonkeyPatch, rt: Runtime, mailbox: Mailbox) -> None:
    _call_killed(ingest, "publish_many", monkeypatch)


def after_announce(monkeypatch: pytest.MonkeyPatch, rt: Runtime, mailbox: Mailbox) -> None:
    # The batch's mails are published and confirmed, not yet recorded as announced.
    _call_killed(rt.store.raw_emails, "set_status_many", monkeypatch)


def before_mark_done(monkeypatch: pytest.MonkeyPatch, rt: Runtime, mailbox: Mailbox) -> None:
    _call_killed(mailbox, "mark_done", monkeypatch)


def before_cursor(monkeypatch: pytest.MonkeyPatch, rt: Runtime, mailbox: Mailbox) -> None:
    # The first cursor write: after the first batch, or the round's only one where the
    # listing stores its cursor once per round (POP3 keeping its mail).
    _call_killed(rt.store.fetch_state, "save_cursor", monkeypatch, call=1)


@pytest.mark.parametrize("keep", [True, False], ids=["keep", "delete"])
@pytest.mark.parametrize("kill", [after_store, after_announce, before_mark_done, before_cursor])
async def test_a_kill_mid_batch_loses_nothing_and_makes_no_duplicate_case(
    rt: Runtime,
    contract: ContractServer,
    monkeypatch: pytest.MonkeyPatch,
    keep: bool,
    kill: CrashPoint,
) -> None:
    monkeypatch.setattr(ingest, "BATCH_SIZE", 3)  # 7 mails: three batches, the kill in the 2nd
    for n in range(7):
        await contract.deliver(mail(n))
    acc = contract.account(keep=keep)
    rt.config = rt.config.model_copy(update={"accounts": {acc.name: acc}})

    killed = open_mailbox(acc, timeout=30)
    kill(monkeypatch, rt, killed)
    fired = False
    try:
        await drain(rt, acc, killed)
    except Killed:
        fired = True
    finally:
        await killed.close()  # the session ends (a killed process's connection drops)
    # Only a transport that needs no cursor (POP3 deleting) has no cursor write to die at.
    state = await rt.store.fetch_state.get(account=acc.name, folder=acc.folder)
    assert fired or (kill is before_cursor and state.cursor is None)
    messages = await announced(rt)
    monkeypatch.undo()  # the next fetcher runs unhindered

    await drain(rt, acc)
    messages += await announced(rt)

    stored = await rt.store.raw_emails.recent(account=acc.name, limit=100)
    assert sorted(r.message_id or "" for r in stored) == sorted(ids(*range(7)))  # once each
    assert {r.status for r in stored} == {"announced"}
    assert {m.raw_id for m in messages} == {r.id for r in stored}  # each announced
    # A repeated announcement (kill after the confirm) makes no second case.
    for message in messages:
        await process_mail(rt, MailReceived.model_validate(message.model_dump()))
    assert await rt.store.db["cases"].count_documents({}) == 7
    remaining = await contract.remaining()
    if keep:
        assert {r.message_id for r in remaining} == ids(*range(7))
    else:
        assert remaining == []


async def test_a_big_mail_streams_through_byte_for_byte(
    rt: Runtime, contract: ContractServer
) -> None:
    line = b"0123456789abcdef" * 6 + b"\r\n"  # 98 bytes
    big = mail(1, body=line * (12 * 1024 * 1024 // len(line)))  # 12 MiB: GridFS, several reads
    await contract.deliver(big)
    acc = contract.account()
    assert await drain(rt, acc) == 1
    (record,) = await rt.store.raw_emails.recent(account=acc.name)
    assert record.size == len(big) and record.truncated is None
    assert await rt.store.raw_emails.data(raw_id=record.id) == big
    assert [m.raw_id for m in await announced(rt)] == [record.id]
    assert await contract.remaining() == []


async def test_a_mail_over_the_size_limit_becomes_a_stub_and_stays_on_the_server(
    rt: Runtime, contract: ContractServer
) -> None:
    rt.config = rt.config.model_copy(update={"settings": GlobalSettings(max_mail_size_mb=0.5)})
    await contract.deliver(mail(1, body=b"x" * 700 * 1024 + b"\r\n"))
    await contract.deliver(mail(2))
    acc = contract.account()  # delete: only the small one goes
    assert await drain(rt, acc) == 2
    by_id = {r.message_id: r for r in await rt.store.raw_emails.recent(account=acc.name)}
    stub = by_id["<contract-1@example.org>"]
    assert stub.truncated and "exceeds the maximum size" in stub.truncated
    assert by_id["<contract-2@example.org>"].truncated is None
    assert len(await announced(rt)) == 2
    assert {r.message_id for r in await contract.remaining()} == ids(1)
    assert await drain(rt, acc) == 0  # the original is not taken again
    assert await announced(rt) == []
