"""Leases and fencing on real MongoDB (and Dovecot): the token grows with every change of
holder, and a round whose lease was taken over deletes nothing and writes no fetch state."""

from __future__ import annotations

from datetime import timedelta

import pytest

from deploy.local.servers import Dovecot
from services.fetcher.deps import FetcherDeps
from services.fetcher.fence import Holder, LeaseFence
from services.fetcher.ingest import fetch_once
from shared.errors import LeaseLost
from shared.models.messages import utcnow
from shared.runtime import Runtime
from tests.integration.fetcher.conftest import MailboxMaker
from tests.integration.fetcher.helpers import (
    account,
    append,
    imap_position,
    server_flags,
    tricky_mail,
)

pytestmark = pytest.mark.integration

A = Holder("fetcher-a", "session-a")
B = Holder("fetcher-b", "session-b")
LATER = timedelta(minutes=5)
"""How far a test moves "now" to let a lease expire without waiting."""


async def take(
    rt: Runtime, holder: Holder, *, late: bool = False, seconds: float = 60
) -> int | None:
    """Acquire (or renew) the lease of ``support`` as ``holder``; ``late`` pretends the
    current lease has long expired. Returns the token, None when another holds it."""
    now = utcnow() + (LATER if late else timedelta())
    lease = await rt.store.leases.acquire(
        account="support",
        owner=holder.id,
        session=holder.session,
        until=now + timedelta(seconds=seconds),
        now=now,
    )
    return lease.token if lease is not None else None


async def test_the_token_grows_with_every_change_of_holder(rt: Runtime) -> None:
    assert await take(rt, A) == 1
    assert await take(rt, B) is None  # A holds it
    assert await take(rt, A) == 1  # a renewal keeps the token
    assert await take(rt, Holder(A.id, "a-restarted-process")) is None

    await rt.store.leases.release(accounts=["support"], owner=A.id, session=A.session, now=utcnow())
    assert await take(rt, B) == 2  # released: taken at once
    assert await take(rt, A, late=True) == 3  # B's lease expired
    renewed = await rt.store.leases.renew(
        accounts=["support"], owner=B.id, session=B.session, until=utcnow()
    )
    assert renewed == {}  # B learns it lost the lease
    lease = await rt.store.leases.get(account="support")
    assert lease is not None and (lease.owner, lease.token) == (A.id, 3)


async def test_fetch_state_accepts_writes_only_with_the_current_token(rt: Runtime) -> None:
    state = rt.store.fetch_state
    await state.claim(account="support", folder="INBOX", token=1)
    await state.save_cursor(account="support", folder="INBOX", cursor="five", fence=1)
    await state.claim(account="support", folder="INBOX", token=2)

    with pytest.raises(LeaseLost):
        await state.save_cursor(account="support", folder="INBOX", cursor="nine", fence=1)
    with pytest.raises(LeaseLost):
        await state.claim(account="support", folder="INBOX", token=1)
    current = await state.get(account="support", folder="INBOX")
    assert (current.cursor, current.fence_token) == ("five", 2)

    await state.save_cursor(account="support", folder="INBOX", cursor="nine", fence=2)
    assert (await state.get(account="support", folder="INBOX")).cursor == "nine"


async def test_a_round_that_lost_its_lease_deletes_nothing_and_writes_no_state(
    rt: Runtime, bob: Dovecot, open_mailbox: MailboxMaker
) -> None:
    acc = account(bob, "bob", name="support", after_fetch="delete")
    token_a = await take(rt, A, seconds=30)
    assert token_a is not None
    await rt.store.fetch_state.claim(account=acc.name, folder=acc.folder, token=token_a)
    fence_a = LeaseFence(rt.store.leases, acc.name, A, token_a, margin=5)
    append(bob, "bob", tricky_mail(1))
    box_a = open_mailbox(acc)
    assert await fetch_once(FetcherDeps.of(rt), acc, box_a, fence=fence_a) == 1
    assert server_flags(bob, "bob") == {}  # deleted by the holder
    position = await imap_position(rt, acc)
    assert position is not None
    uidvalidity, mark = position

    # A is paused past its lease; B takes the account over and claims its fetch state.
    token_b = await take(rt, B, late=True)
    assert token_b == token_a + 1
    await rt.store.fetch_state.claim(account=acc.name, folder=acc.folder, token=token_b)
    append(bob, "bob", tricky_mail(2), tricky_mail(3))

    # A wakes up and runs a round with its old lease.
    with pytest.raises(LeaseLost):
        await fetch_once(FetcherDeps.of(rt), acc, box_a, fence=fence_a)
    assert list(server_flags(bob, "bob").values()) == ["", ""]  # neither deleted nor flagged
    state = await rt.store.fetch_state.get(account=acc.name, folder=acc.folder)
    assert (await imap_position(rt, acc), state.fence_token) == ((uidvalidity, mark), token_b)

    # B fetches them; nothing is stored twice.
    fence_b = LeaseFence(rt.store.leases, acc.name, B, token_b, margin=5)
    await fetch_once(FetcherDeps.of(rt), acc, open_mailbox(acc), fence=fence_b)
    assert server_flags(bob, "bob") == {}
    assert len(await rt.store.raw_emails.recent(account=acc.name)) == 3
    state = await rt.store.fetch_state.get(account=acc.name, folder=acc.folder)
    assert await imap_position(rt, acc) == (uidvalidity, mark + 2)
    assert state.fence_token == token_b
