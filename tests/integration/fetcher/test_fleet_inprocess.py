"""Two fleet members in one process on real MongoDB (mailboxes faked): the shares follow
rendezvous hashing, a disabled account and a clean shutdown hand leases back at once, and a
lease taken away behind an instance's back stops its task."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any

import pytest

from services.fetcher.deps import FetcherDeps
from services.fetcher.fence import Fence, Holder
from services.fetcher.fleet import Fleet
from services.fetcher.rendezvous import assign
from shared.config_views import ACCOUNTS_MODULE
from shared.mailbox import (
    Disposal,
    FetchedMail,
    Guard,
    Listing,
    Mailbox,
    MailboxStatus,
    MessageRef,
    unguarded,
)
from shared.models.config import IncomingAccount
from shared.models.messages import utcnow
from shared.runtime import Runtime
from tests.support import eventually

pytestmark = pytest.mark.integration

NAMES = [f"acct{n}" for n in range(10)]


class IdleMailbox:
    """A mailbox with no mail that waits for news like IDLE would."""

    async def connect(self) -> MailboxStatus:
        return MailboxStatus(exists=0)

    async def list_new(self, cursor: str | None) -> Listing:
        return Listing(refs=[], twins_possible=False, cursor_after=lambda done: None)

    async def fetch(
        self, refs: Sequence[MessageRef], *, max_size: int | None = None
    ) -> AsyncIterator[FetchedMail]:
        for _ in ():
            yield _

    async def mark_done(
        self, refs: Sequence[MessageRef], *, disposal: Disposal, guard: Guard = unguarded
    ) -> None:
        return None

    async def wait_for_news(self, timeout: float) -> bool:
        await asyncio.sleep(0.05)
        return False

    async def close(self) -> None:
        return None


def idle_mailbox(account: IncomingAccount, timeout: float) -> Mailbox:
    return IdleMailbox()


async def checked_round(
    deps: FetcherDeps, account: IncomingAccount, mailbox: Mailbox, *, fence: Fence
) -> int:
    """A round that only does what precedes every destructive step: the fence check."""
    await fence.check()
    return 0


async def put(rt: Runtime, module: str, key: str, value: Any) -> None:
    await rt.store.properties.put(module=module, key=key, value=value, who="test")
    await rt.reload_config()


def member(rt: Runtime, name: str) -> Fleet:
    fleet = Fleet(
        FetcherDeps.of(rt),
        Holder(name, f"{name}-session"),
        mailbox_factory=idle_mailbox,
        fetch=checked_round,
    )
    rt.on_config(fleet.config_changed)
    return fleet


async def test_members_share_hand_back_and_stop_on_a_stolen_lease(rt: Runtime) -> None:
    await put(rt, "settings", "fetcher_lease_seconds", 3.0)
    for name in NAMES:
        await put(
            rt, ACCOUNTS_MODULE, name, {"host": "imap.invalid", "username": "u", "password": "pw"}
        )
    first, second = member(rt, "m1"), member(rt, "m2")
    await first.start()
    try:
        await eventually(lambda: _holds(first, set(NAMES)), what="m1 holding every account")
        await second.start()
        try:
            expected = assign(NAMES, ["m1", "m2"])
            mine = {n for n, o in expected.items() if o == "m2"}
            assert mine and mine != set(NAMES)
            await eventually(lambda: _holds(second, mine), what="m2 taking its share")
            await eventually(lambda: _holds(first, set(NAMES) - mine), what="m1 keeping the rest")
            assert set(first.supervisor.running) == set(NAMES) - mine

            gone = sorted(mine)[0]
            await put(
                rt,
                ACCOUNTS_MODULE,
                gone,
                {"host": "imap.invalid", "username": "u", "password": "pw", "enabled": False},
            )
            await eventually(
                lambda: _holds(second, mine - {gone}), what="the disabled one released"
            )
            lease = await rt.store.leases.get(account=gone)
            assert lease is not None and lease.owner is None
        finally:
            await second.stop()
        # A clean shutdown hands everything back at once and removes the heartbeat.
        for name in mine - {gone}:
            lease = await rt.store.leases.get(account=name)
            assert lease is not None and lease.owner is None
        assert [i.id for i in await rt.store.fetchers.all()] == ["m1"]
        await eventually(lambda: _holds(first, set(NAMES) - {gone}), what="m1 taking them back")

        # Someone else takes one of m1's leases (as if m1 had been paused past it).
        victim = sorted(first.held)[0]
        later = utcnow() + timedelta(minutes=5)
        stolen = await rt.store.leases.acquire(
            account=victim,
            owner="intruder",
            session="x",
            until=later + timedelta(minutes=5),
            now=later,
        )
        assert stolen is not None and stolen.token > 1

        async def stopped() -> bool:
            return victim not in first.held and victim not in first.supervisor.running

        await eventually(stopped, what="m1 stopping the account it lost")
        assert first.counts.lease_changes > 0
    finally:
        await first.stop()


async def _holds(fleet: Fleet, names: set[str]) -> bool:
    return set(fleet.held) == names and set(fleet.supervisor.running) == names
