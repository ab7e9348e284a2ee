"""Three real fetcher processes share 30 Dovecot mailboxes while mail keeps arriving: every
account has exactly one owner, a killed instance's accounts are taken over when its leases
expire, a restarted one gets its share back, and every delivered mail is stored once."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from pathlib import Path

import pytest

from deploy.local.servers import Dovecot
from services.config.properties import put_account, set_fields
from services.fetcher.rendezvous import assign
from shared.runtime import Runtime
from tests.integration.fetcher.fleet_support import (
    Fetchers,
    fetchers,
    heartbeats,
    purge_announcements,
    settled,
    valid_leases,
)
from tests.support import eventually, make_mail

pytestmark = pytest.mark.integration

LEASE = 3.0
ACCOUNTS = [f"fleet{n:02d}" for n in range(30)]
INSTANCES = {"f1", "f2", "f3"}


async def configure(rt: Runtime, dovecot: Dovecot) -> None:
    """30 users on Dovecot, one account each (IMAP, deleting what was stored). IDLE reports
    new mail at once, so the poll interval (a re-check) can be long: less load."""
    for user in ACCOUNTS[:-1]:
        dovecot.users[user] = f"{user}-pw"  # written to Dovecot's file by the last add_user
    dovecot.add_user(ACCOUNTS[-1], f"{ACCOUNTS[-1]}-pw")
    for user in ACCOUNTS:
        dovecot.reset_mailbox(user)
    await set_fields(
        rt,
        module="settings",
        values={"poll_interval_seconds": 10.0, "fetcher_lease_seconds": LEASE},
        who="test",
    )
    for user in ACCOUNTS:
        fields = {
            "protocol": "IMAP",
            "host": "127.0.0.1",
            "port": dovecot.imap_port,
            "username": user,
            "password": f"{user}-pw",
            "ca_file": str(dovecot.cert_file),
            "after_fetch": "delete",
        }
        await put_account(rt, name=user, fields=fields, who="test", create=True)


class Mail:
    """Delivers mail to random accounts until stopped, counting per account."""

    def __init__(self, dovecot: Dovecot) -> None:
        self._dovecot = dovecot
        self.delivered: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop after the delivery under way (a cancelled one might still arrive uncounted)."""
        assert self._task is not None
        self._stopping = True
        await self._task

    async def to(self, user: str) -> None:
        raw, _ = make_mail(subject=f"to {user} #{self.delivered[user]}")
        await asyncio.to_thread(self._dovecot.deliver, user, raw)
        self.delivered[user] += 1

    async def _run(self) -> None:
        while not self._stopping:
            await self.to(random.choice(ACCOUNTS))
            await asyncio.sleep(0.1)


class Sampler:
    """Samples ownership all along: each account's valid lease must name a live instance."""

    def __init__(self, rt: Runtime, fleet: Fetchers) -> None:
        self._rt = rt
        self._fleet = fleet
        self.samples = 0
        self.violations: list[str] = []
        self.killed: dict[str, float] = {}  # instance → when it was killed
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            leases = await valid_leases(self._rt)
            running = self._fleet.running()
            for account, lease in leases.items():
                owner = str(lease.owner)
                # A killed instance's lease may run on for up to the lease time after the kill.
                dead_for = time.monotonic() - self.killed.get(owner, time.monotonic())
                if owner not in running and dead_for > LEASE + 1:
                    self.violations.append(f"{account} held by dead {owner} after {dead_for:.1f}s")
            self.samples += 1
            await asyncio.sleep(0.2)


async def stored_per_account(rt: Runtime) -> Counter[str]:
    return Counter(r.account for r in await rt.store.raw_emails.recent(limit=100_000))


async def test_three_fetchers_share_thirty_mailboxes_and_survive_a_kill(
    rt: Runtime, dovecot: Dovecot, tmp_path: Path
) -> None:
    accounts = set(ACCOUNTS)
    mail = Mail(dovecot)
    with fetchers(rt, tmp_path) as fleet:
        sampler = Sampler(rt, fleet)
        for name in sorted(INSTANCES):
            fleet.start(name)
        # The accounts arrive by broadcast while the processes start.
        await configure(rt, dovecot)
        sampler.start()
        mail.start()

        expected = assign(ACCOUNTS, INSTANCES)

        async def balanced() -> dict[str, str] | None:
            owners = await settled(rt, accounts, INSTANCES)
            return owners if owners == expected else None

        first = await eventually(balanced, timeout=60, what="the 3 instances' shares")

        victim = "f2"
        theirs = {a for a, o in first.items() if o == victim}
        fleet.kill(victim)
        killed_at = time.monotonic()
        sampler.killed[victim] = killed_at
        survivors = INSTANCES - {victim}
        after_kill = await eventually(
            lambda: settled(rt, accounts, survivors), timeout=60, what="accounts taken over"
        )
        took_over = time.monotonic() - killed_at
        # Only the dead instance's accounts moved.
        assert {a for a in ACCOUNTS if after_kill[a] != first[a]} == theirs
        # Fetching goes on for them: a mail to one of them now is stored.
        target = sorted(theirs)[0]
        before = (await stored_per_account(rt))[target]
        await mail.to(target)

        async def fetched_again() -> bool:
            return (await stored_per_account(rt))[target] > before

        await eventually(fetched_again, timeout=30, what=f"new mail of {target} fetched")

        fleet.start(victim)
        back = await eventually(
            lambda: settled(rt, accounts, INSTANCES), timeout=60, what="the restarted share"
        )
        moved = {a for a in ACCOUNTS if back[a] != after_kill[a]}
        assert back == first  # the same instances: the same owners as at the start
        assert moved == theirs and all(back[a] == victim for a in moved)

        await mail.stop()

        async def all_stored() -> bool:
            return await stored_per_account(rt) == mail.delivered

        await eventually(all_stored, timeout=60, what="every delivered mail stored")
        await sampler.stop()
        beats = await heartbeats(rt)

    print(
        f"\nfleet: {sum(mail.delivered.values())} mails, {sampler.samples} ownership samples, "
        f"takeover after kill -9 in {took_over:.1f}s (lease {LEASE}s), "
        f"{len(moved)}/{len(ACCOUNTS)} moved back on restart"
    )
    await purge_announcements(rt)
    assert sampler.violations == []
    assert sampler.samples > 10
    records = await rt.store.raw_emails.recent(limit=100_000)
    assert len(records) == len({(r.account, r.source_key) for r in records})
    assert sum(b.counts.mails_fetched for b in beats.values()) >= len(records) - sum(
        1 for r in records if r.account in theirs
    )
    # A clean shutdown releases every lease and removes the heartbeats at once.
    assert await valid_leases(rt) == {}
    assert await heartbeats(rt) == {}
