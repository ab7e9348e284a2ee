"""The fencing check a fetch round makes before it changes anything outside MongoDB's
raw-mail store: before it deletes or flags mail on the server and in every fetch-state write.

A mail server knows nothing of leases, so the round asks MongoDB right before each
destructive step whether this instance still holds the account's lease with its token, and
with enough validity left that the command reaches the server before the lease could pass
to another instance. The fetch-state writes carry the token themselves (see
``shared.store.fetch_state``), so there the check and the write are one atomic update.

A check that took longer than its margin is refused too: the process may have been paused
(SIGSTOP, a VM freeze, a long GC) while its question was in flight, and the answer may be
stale by the time it arrives.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from shared.errors import LeaseLost
from shared.models.messages import utcnow
from shared.store.leases import LeaseRepo


class Fence(Protocol):
    """What a fetch round needs to stay inside its lease."""

    @property
    def token(self) -> int | None:
        """The lease's fencing token, named in every fetch-state write (None: unfenced)."""

    async def check(self) -> None:
        """Raise LeaseLost unless the lease is still held for a while longer."""


class _NoFence:
    """A single fetcher without leases (tests, tools): every step is allowed."""

    @property
    def token(self) -> int | None:
        return None

    async def check(self) -> None:
        return None


NO_FENCE: Fence = _NoFence()


@dataclass(frozen=True)
class Holder:
    """Who holds leases: the instance id, and a random session so that a restarted process
    with the same id never counts as the holder of its predecessor's leases."""

    id: str
    session: str


@dataclass
class LeaseFence:
    """The fence of one account's fetch task, bound to the lease token it was started with.

    ``margin`` is how long the lease must stay valid after the check, and also the longest
    the check itself may take.
    """

    leases: LeaseRepo
    account: str
    holder: Holder
    lease_token: int
    margin: float

    @property
    def token(self) -> int | None:
        """The lease token every fetch-state write of this task names."""
        return self.lease_token

    async def check(self) -> None:
        """Raise LeaseLost unless the lease with this token is held for twice ``margin`` more,
        as MongoDB answered within ``margin``."""
        started = time.monotonic()
        valid_after = utcnow() + timedelta(seconds=2 * self.margin)
        held = await self.leases.holds(
            account=self.account,
            owner=self.holder.id,
            session=self.holder.session,
            token=self.lease_token,
            valid_after=valid_after,
        )
        slow = time.monotonic() - started > self.margin
        if held and not slow:
            return
        why = "the answer came too late to trust" if held else "another fetcher holds it now"
        raise LeaseLost(f"{self.account}: lease token {self.lease_token} no longer held ({why})")
