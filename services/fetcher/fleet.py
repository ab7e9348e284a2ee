"""This instance's part in the fetcher fleet: heartbeat, leases, and which accounts it fetches.

Every tick (a third of the lease time, at most 2 s; at once after a config broadcast) the
instance:

1. reads the live instances (heartbeat younger than the lease time) and decides by
   rendezvous hashing (``services.fetcher.rendezvous``) which enabled accounts are its own;
2. renews the leases it holds in one write; one that is gone was taken over: its task stops;
3. takes the leases of its accounts that are free or expired (a new holder increments the
   fencing token); one still held by another instance is tried again within half a second;
4. runs a fetch task exactly for the accounts it holds (``Supervisor``), stops the others
   and only then releases their leases, so their new owner never overlaps with it;
5. writes its heartbeat: time, held accounts, last fetch per account and its counts.

Starting and stopping tasks happens beside the ticks, never inside one: a task that takes
long to close its connection must not hold up the renewal of every other lease. A lease
being handed over is renewed until its task has stopped.

A killed instance stops renewing: its leases expire and its heartbeat ages past the lease
time together, and the others take its accounts over at their next tick (each wakes when a
peer's heartbeat would expire, so this is within about the lease time). A clean shutdown
stops the tasks, releases the leases and removes the heartbeat at once. If MongoDB cannot
be reached, the instance stops its tasks when its leases have expired by its own clock.

Each fetch round runs behind a ``LeaseFence`` holding the token the lease had when the round
began: the round claims the account's fetch state with it and re-checks the lease before
every destructive step, so a paused instance that wakes up after losing its lease changes
nothing. Clocks of the instances must agree to well under the lease time (NTP).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Protocol

from services.fetcher.deps import FetcherDeps
from services.fetcher.fence import Fence, Holder, LeaseFence
from services.fetcher.ingest import fetch_once
from services.fetcher.rendezvous import assign
from services.fetcher.supervisor import AccountMailboxes, Backoff, Supervisor
from shared import metrics
from shared.errors import LeaseLost
from shared.mailbox import Mailbox
from shared.models.config import IncomingAccount, SystemConfig
from shared.models.fetchers import FetcherCounts, FetcherInstance
from shared.models.messages import utcnow

log = logging.getLogger(__name__)

MAX_TICK = 2.0
"""Seconds between heartbeats at most, whatever the lease time."""
BLOCKED_RETRY = 0.5
"""Seconds until an account that is ours but still held by another is tried again."""
PRUNE_AFTER = timedelta(hours=1)
"""Heartbeats of instances that vanished without a clean shutdown are kept this long."""
PRUNE_EVERY = 100
"""Ticks between two prunings of old heartbeats."""


class FencedRound(Protocol):
    """A fetch round that honours a fence (``fetch_once``)."""

    async def __call__(
        self, deps: FetcherDeps, account: IncomingAccount, mailbox: Mailbox, *, fence: Fence
    ) -> int:
        """Fetch the account's new mail; return how many were stored."""


def tick_seconds(lease: float) -> float:
    """Heartbeat and renewal period for a lease time: a third of it, at most MAX_TICK."""
    return min(MAX_TICK, lease / 3)


def fence_margin(lease: float) -> float:
    """How long a fence check may take, and half the validity it demands (a sixth of the
    lease: renewals every third leave two thirds or more)."""
    return lease / 6


def only(config: SystemConfig, accounts: Collection[str]) -> SystemConfig:
    """``config`` with just the named accounts (what the supervisor should run)."""
    kept = {name: a for name, a in config.accounts.items() if name in accounts}
    return config.model_copy(update={"accounts": kept})


class Fleet:
    """Heartbeats and leases of one fetcher instance, driving its ``Supervisor``."""

    def __init__(
        self,
        deps: FetcherDeps,
        holder: Holder,
        *,
        mailbox_factory: AccountMailboxes | None = None,
        fetch: FencedRound = fetch_once,
        backoff: Backoff | None = None,
    ) -> None:
        self._deps = deps
        self.holder = holder
        self.counts = FetcherCounts()
        self._fetch = fetch
        self.supervisor = Supervisor(
            deps, mailbox_factory=mailbox_factory, fetch=self._round, backoff=backoff
        )
        self._held: dict[str, int] = {}
        self._releasing: set[str] = set()
        self._applier: asyncio.Task[None] | None = None
        self._dirty = False
        self._ticked = asyncio.Event()
        self._claimed: dict[tuple[str, str], int] = {}
        self._last_fetch: dict[str, datetime] = {}
        self._valid_until: datetime | None = None
        self._started_at = utcnow()
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._stopping = False
        self._ticks = 0

    @property
    def held(self) -> dict[str, int]:
        """The accounts whose lease this instance holds, with their tokens."""
        return dict(self._held)

    async def start(self) -> None:
        """Take this instance's share of the accounts and keep ticking."""
        self._stopping = False
        await self.supervisor.start(only(self._deps.config(), ()))
        try:
            await self.tick()
        except Exception as exc:
            # MongoDB may come up later: the loop keeps trying.
            log.warning("first fetcher heartbeat failed: %s", str(exc) or type(exc).__name__)
        self._loop = asyncio.create_task(self._run(), name="fetcher-fleet")

    async def stop(self) -> None:
        """Stop every task, then hand the accounts back at once and drop the heartbeat.

        The loops also end by the flag: a cancellation that lands while a library call
        returns can be swallowed on Python 3.11, and the loop would then tick on (seen: a
        stop waiting forever right after a configuration change woke the loop)."""
        self._stopping = True
        self._wake.set()
        for task in (self._loop, self._applier):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._loop = self._applier = None
        await self.supervisor.stop()
        released, self._held, self._releasing = sorted(self._held), {}, set()
        metrics.owned_accounts(0)
        try:
            await self._release(released)
            await self._deps.repos().fetchers.remove(instance_id=self.holder.id)
        except Exception as exc:
            log.warning(
                "could not release %d leases at shutdown (%s); they expire by themselves",
                len(released),
                type(exc).__name__,
            )
            return
        self._changed("released", released)

    async def config_changed(self, config: SystemConfig) -> None:
        """A new configuration: rebalance at once (accounts added, removed, disabled)."""
        self._wake.set()

    async def tick(self) -> float:
        """One heartbeat (see the module docstring); returns the seconds until the next."""
        config = self._deps.config()
        repos = self._deps.repos()
        lease = config.settings.fetcher_lease_seconds
        now = utcnow()
        peers = {
            i.id: i.heartbeat_at
            for i in await repos.fetchers.live(since=now - timedelta(seconds=lease))
            if i.id != self.holder.id
        }
        enabled = sorted(name for name, a in config.accounts.items() if a.enabled)
        owners = assign(enabled, [*peers, self.holder.id])
        wanted = {name for name, owner in owners.items() if owner == self.holder.id}
        until = now + timedelta(seconds=lease)
        renewed = await repos.leases.renew(
            accounts=self._held, owner=self.holder.id, session=self.holder.session, until=until
        )
        lost = sorted(self._held.keys() - renewed.keys())
        gained: dict[str, int] = {}
        blocked = False
        for name in sorted(wanted - renewed.keys()):
            taken = await repos.leases.acquire(
                account=name,
                owner=self.holder.id,
                session=self.holder.session,
                until=until,
                now=now,
            )
            if taken is None:
                blocked = True
            else:
                gained[name] = taken.token
        # Kept (and renewed) until their tasks have stopped, then released by _apply.
        self._releasing = (self._releasing & renewed.keys()) | (renewed.keys() - wanted)
        self._held = renewed | gained
        self._valid_until = until
        self._changed("lost", lost)
        self._changed("acquired", sorted(gained))
        self._schedule_apply()
        metrics.owned_accounts(len(self._held) - len(self._releasing))
        self._last_fetch = {n: t for n, t in self._last_fetch.items() if n in self._held}
        await repos.fetchers.beat(instance=self._instance())
        self._ticks += 1
        self._ticked.set()
        self._ticked = asyncio.Event()
        if self._ticks % PRUNE_EVERY == 0:
            await repos.fetchers.prune(before=now - PRUNE_AFTER)
        return self._next_tick(lease, peers, now, blocked=blocked)

    def _next_tick(
        self, lease: float, peers: dict[str, datetime], now: datetime, *, blocked: bool
    ) -> float:
        delay = tick_seconds(lease)
        if blocked:
            delay = min(delay, BLOCKED_RETRY)
        for beat in peers.values():
            # Wake right after a silent peer counts as dead, to take its accounts over.
            dead_in = (beat + timedelta(seconds=lease) - now).total_seconds() + 0.05
            if dead_in > 0:
                delay = min(delay, dead_in)
        return delay

    def _instance(self) -> FetcherInstance:
        return FetcherInstance(
            id=self.holder.id,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=self._started_at,
            heartbeat_at=utcnow(),
            accounts=sorted(self._held.keys() - self._releasing),
            last_fetch=self._last_fetch,
            counts=self.counts,
        )

    def _schedule_apply(self) -> None:
        """Bring the tasks in line with the held leases, in the background."""
        self._dirty = True
        if self._applier is None or self._applier.done():
            self._applier = asyncio.create_task(self._apply(), name="fetcher-fleet-apply")

    async def _apply(self) -> None:
        """Start and stop tasks; release the leases whose tasks have stopped."""
        while self._dirty and not self._stopping:
            self._dirty = False
            active = self._held.keys() - self._releasing
            await self.supervisor.reconcile(only(self._deps.config(), active))
            stopped = sorted(self._releasing - self.supervisor.running.keys())
            if not stopped:
                continue
            try:
                await self._release(stopped)
            except Exception as exc:
                # Still renewed by the ticks; the next change tries again, or they expire.
                log.warning("could not release leases: %s", type(exc).__name__)
                continue
            self._releasing.difference_update(stopped)
            for name in stopped:
                self._held.pop(name, None)
            self._changed("released", stopped)

    async def _release(self, accounts: list[str]) -> None:
        """Hand the leases of ``accounts`` back in one write."""
        await self._deps.repos().leases.release(
            accounts=accounts, owner=self.holder.id, session=self.holder.session, now=utcnow()
        )

    def _changed(self, change: metrics.LeaseChange, accounts: list[str]) -> None:
        if not accounts:
            return
        self.counts.lease_changes += len(accounts)
        metrics.lease_changed(change, len(accounts))
        log.info(
            "leases %s: %s",
            change,
            ", ".join(accounts),
            extra={"change": change, "accounts": accounts, "instance": self.holder.id},
        )

    async def _run(self) -> None:
        delay = tick_seconds(self._deps.config().settings.fetcher_lease_seconds)
        while not self._stopping:
            # asyncio.timeout, not wait_for: in Python 3.11 a wait_for whose event is set just
            # as the task is cancelled (a config change at shutdown) swallows the cancellation.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            if self._stopping:
                return
            self._wake.clear()
            started = time.monotonic()
            try:
                delay = await self.tick()
            except Exception as exc:
                log.warning("fetcher heartbeat failed: %s", str(exc) or type(exc).__name__)
                delay = tick_seconds(self._deps.config().settings.fetcher_lease_seconds)
                await self._stop_if_expired()
            delay = max(0.0, delay - (time.monotonic() - started))

    async def _stop_if_expired(self) -> None:
        """Without MongoDB no lease can be renewed: stop fetching once they ran out."""
        if self._held and self._valid_until is not None and utcnow() >= self._valid_until:
            log.error("leases of %d accounts expired unrenewed; stopping them", len(self._held))
            lost, self._held, self._releasing = sorted(self._held), {}, set()
            self._schedule_apply()
            self._changed("lost", lost)
            metrics.owned_accounts(0)

    async def _round(self, deps: FetcherDeps, account: IncomingAccount, mailbox: Mailbox) -> int:
        """One fetch round of a held account behind its lease's fence, counted."""
        token = self._held.get(account.name)
        try:
            if token is None or account.name in self._releasing:
                raise LeaseLost(f"{account.name}: lease no longer held")
            key = (account.name, account.folder)
            if self._claimed.get(key) != token:
                await deps.repos().fetch_state.claim(
                    account=account.name, folder=account.folder, token=token
                )
                self._claimed[key] = token
            margin = fence_margin(deps.config().settings.fetcher_lease_seconds)
            fence = LeaseFence(deps.repos().leases, account.name, self.holder, token, margin)
            created = await self._fetch(deps, account, mailbox, fence=fence)
        except LeaseLost:
            self.counts.fenced += 1
            # Find out at once whether the lease is gone; if it is still ours (the check was
            # merely slow), the round ends without error and the next one tries again.
            ticked = self._ticked
            self._wake.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(3 * MAX_TICK):
                    await ticked.wait()
            if token is not None and self._held.get(account.name) == token:
                return 0
            raise
        except Exception:
            self.counts.fetch_errors += 1
            raise
        self.counts.mails_fetched += created
        self._last_fetch[account.name] = utcnow()
        return created
