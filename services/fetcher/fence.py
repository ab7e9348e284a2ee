"""The fencing check a fetch round makes before it changes anything outside MongoDB's
raw-mail store: before it deletes or flags mail on the server and in every fetch-state write.

A mail server knows nothing of leases, so the round asks MongoDB right before each
destructive step whether this instance still holds the account's lease with its token, and
with enough validity left that the command reaches the server before the lease could pass
to another instance. The fetch-state writes carry the token themselves (see
``shared.store.fetch_state``), so there the check and the write are one atomic update.

A check that took longer than its margin is refused too: the process may have been paused
(SIGSTOP, a VM freeze, a long GC) while its question was in flight, and the answer may be
stale by the time it arrives. A pause can also fall between two commands of one step (IMAP's
STORE and EXPUNGE, POP3's DELEs): so the mailbox awaits the fence's ``guard`` before each
command, and an answer vouches for ``margin`` after its question only, measured on the
monotonic clock, which runs on while the process is stopped. The window left is the turn
of the event loop between the guard and the command's write to the socket. A POP3 server
commits DELEs at QUIT: those a resumed process sent while its lease was valid are still
committed, which removes only mail already stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
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

    async def guard(self) -> None:
        """Raise LeaseLost unless this process may still change the account's mail now: the
        ``Guard`` a fetch round hands to ``Mailbox.mark_done`` after a check."""


class _NoFence:
    """A single fetcher without leases (tests, tools): every step is allowed."""

    @property
    def token(self) -> int | None:
        return None

    async def check(self) -> None:
        return None

    async def guard(self) -> None:
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
    clock: Callable[[], float] = time.monotonic
    """What a check's answer is timed by: monotonic, which runs on while the process is
    stopped."""
    _vouched_until: float = field(default=float("-inf"), init=False, repr=False)

    @property
    def token(self) -> int | None:
        """The lease token every fetch-state write of this task names."""
        return self.lease_token

    async def guard(self) -> None:
        """Return at once while the last check's answer vouches (``margin`` after its
        question went out); otherwise :meth:`check`."""
        if self.clock() < self._vouched_until:
            return
        await self.check()

    async def check(self) -> None:
        """Raise LeaseLost unless the lease with this token is held for twice ``margin`` more,
        as MongoDB answered within ``margin``."""
        started = self.clock()
        valid_after = utcnow() + timedelta(seconds=2 * self.margin)
        held = await self.leases.holds(
            account=self.account,
            owner=self.holder.id,
            session=self.holder.session,
            token=self.lease_token,
            valid_after=valid_after,
        )
        slow = self.clock() - started > self.margin
        if held and not slow:
            self._vouched_until = started + self.margin
            return
        why = "the answer came too late to trust" if held else "another fetcher holds it now"
        raise LeaseLost(f"{self.account}: lease token {self.lease_token} no longer held ({why})")
