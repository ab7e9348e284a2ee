"""LeaseFence.guard: an answer from MongoDB vouches for ``margin`` after its question only, on
the monotonic clock, so a pause between two commands of one step (SIGSTOP between IMAP's
STORE and EXPUNGE) makes the next command ask again, and find the lease gone."""

from __future__ import annotations

from datetime import datetime
from typing import cast

import pytest

from services.fetcher.fence import Holder, LeaseFence
from shared.errors import LeaseLost
from shared.store.leases import LeaseRepo


class Leases:
    """The lease store: held or not, and how many times it was asked."""

    def __init__(self) -> None:
        self.held = True
        self.asked = 0

    async def holds(
        self, *, account: str, owner: str, session: str, token: int, valid_after: datetime
    ) -> bool:
        self.asked += 1
        return self.held


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def fence_on(leases: Leases, clock: Clock) -> LeaseFence:
    holder = Holder(id="fa", session="s1")
    repo = cast(LeaseRepo, leases)
    return LeaseFence(repo, "support", holder, lease_token=4, margin=2.0, clock=clock)


async def test_a_fresh_answer_vouches_for_the_next_commands_without_asking(clock: Clock) -> None:
    leases = Leases()
    fence = fence_on(leases, clock)
    await fence.check()
    clock.now += 1.9
    await fence.guard()
    await fence.guard()
    assert leases.asked == 1


async def test_after_a_pause_the_guard_asks_again_and_refuses_a_lost_lease(clock: Clock) -> None:
    leases = Leases()
    fence = fence_on(leases, clock)
    await fence.check()
    clock.now += 30  # SIGSTOP between two commands; another instance took the account
    leases.held = False
    with pytest.raises(LeaseLost, match="another fetcher holds it now"):
        await fence.guard()
    assert leases.asked == 2


async def test_a_guard_before_any_check_asks(clock: Clock) -> None:
    leases = Leases()
    await fence_on(leases, clock).guard()
    assert leases.asked == 1


async def test_a_refused_check_vouches_for_nothing(clock: Clock) -> None:
    leases = Leases()
    leases.held = False
    fence = fence_on(leases, clock)
    with pytest.raises(LeaseLost):
        await fence.check()
    leases.held = True
    await fence.guard()
    assert leases.asked == 2
