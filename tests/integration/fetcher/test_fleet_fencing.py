"""A fetcher paused (SIGSTOP) in the middle of a round, past its lease: another instance
takes the account over; when the paused one resumes, it neither flags nor expunges mail on
the connections it had open, and the fetch state only ever carries the new token.

The IMAP commands are watched by a relay in front of Dovecot (``imap_tap``) that knows which
process sent each one, so the proof does not rest on the fetcher's own account of itself.
"""

from __future__ import annotations

import asyncio
import imaplib
import signal
import time
from pathlib import Path

import pytest

from deploy.local.servers import Dovecot
from services.config.properties import put_account, set_fields
from services.fetcher.rendezvous import assign
from shared.runtime import Runtime
from tests.integration.fetcher.fleet_support import (
    fetchers,
    heartbeats,
    purge_announcements,
    settled,
    valid_leases,
)
from tests.integration.fetcher.imap_tap import ImapTap
from tests.support import eventually, make_mail

pytestmark = pytest.mark.integration

LEASE = 3.0
ACCOUNTS = [f"pause{n}" for n in range(6)]
INSTANCES = {"fa", "fb"}
MAILS = 300


def imap_append(dovecot: Dovecot, user: str, mails: list[bytes]) -> None:
    with imaplib.IMAP4("127.0.0.1", dovecot.imap_port, timeout=30) as imap:
        imap.login(user, f"{user}-pw")
        for mail in mails:
            imap.append("INBOX", None, None, mail)


def inbox_count(dovecot: Dovecot, user: str) -> int:
    with imaplib.IMAP4("127.0.0.1", dovecot.imap_port, timeout=30) as imap:
        imap.login(user, f"{user}-pw")
        _, data = imap.select("INBOX")
        return int(data[0] or 0)


async def test_a_resumed_stale_owner_deletes_nothing_and_writes_no_state(
    rt: Runtime, dovecot: Dovecot, tmp_path: Path
) -> None:
    for user in ACCOUNTS[:-1]:
        dovecot.users[user] = f"{user}-pw"
    dovecot.add_user(ACCOUNTS[-1], f"{ACCOUNTS[-1]}-pw")
    for user in ACCOUNTS:
        dovecot.reset_mailbox(user)
    expected = assign(ACCOUNTS, INSTANCES)
    victim = "fa"
    box = next(a for a in ACCOUNTS if expected[a] == victim)

    async with ImapTap(dovecot.imap_port) as tap:
        with fetchers(rt, tmp_path) as fleet:
            tap.pids = [fleet.start(name).pid for name in sorted(INSTANCES)]
            pid = fleet.procs[victim].pid
            await set_fields(
                rt,
                module="settings",
                values={"poll_interval_seconds": 10.0, "fetcher_lease_seconds": LEASE},
                who="test",
            )
            for user in ACCOUNTS:
                fields = {
                    "protocol": "IMAP",
                    "security": "none",  # readable by the tap
                    "host": "127.0.0.1",
                    "port": tap.port,
                    "username": user,
                    "password": f"{user}-pw",
                    "after_fetch": "delete",
                }
                await put_account(rt, name=user, fields=fields, who="test", create=True)

            async def balanced() -> bool:
                return await settled(rt, set(ACCOUNTS), INSTANCES) == expected

            await eventually(balanced, timeout=60, what="both instances' shares")
            lease = (await valid_leases(rt))[box]
            old_token = lease.token

            # A burst of mail; pause the owner as soon as its round has stored some of it.
            mails = [make_mail(subject=f"burst {n}")[0] for n in range(MAILS)]
            await asyncio.to_thread(imap_append, dovecot, box, mails)

            async def some_stored() -> bool:
                return await rt.store.raw_emails.count() > 0

            await eventually(some_stored, timeout=60, what="the owner's round under way")
            fleet.signal(victim, signal.SIGSTOP)
            paused_at = time.monotonic()

            async def taken_over() -> bool:
                current = (await valid_leases(rt)).get(box)
                if current is None or current.owner == victim:
                    return False
                state = await rt.store.fetch_state.get(account=box, folder="INBOX")
                empty = await asyncio.to_thread(inbox_count, dovecot, box) == 0
                return empty and state.fence_token == current.token

            await eventually(taken_over, timeout=60, what="the take-over and the inbox drained")
            new_token = (await valid_leases(rt))[box].token
            assert new_token > old_token
            assert await rt.store.raw_emails.count() == MAILS

            resumed_at = time.monotonic()
            fleet.signal(victim, signal.SIGCONT)

            async def resumed() -> bool:
                beats = await heartbeats(rt)
                return (
                    victim in beats and beats[victim].counts.lease_changes > 0 and await balanced()
                )

            await eventually(resumed, timeout=60, what="the resumed instance back in the fleet")
            state = await rt.store.fetch_state.get(account=box, folder="INBOX")
            fenced = (await heartbeats(rt))[victim].counts.fenced

    stale = [c for c in tap.connections if c.pid == pid and c.opened < paused_at]
    assert any(c.user == box for c in stale), "the paused owner had a session on the box"
    stale_writes = [line for c in stale for line in c.destructive_after(resumed_at)]
    assert stale_writes == []
    assert any(c.destructive_after(paused_at) for c in tap.connections if c.pid != pid)
    assert state.fence_token is not None and state.fence_token >= new_token
    assert await rt.store.raw_emails.count() == MAILS
    await purge_announcements(rt)
    print(
        f"\nfencing: lease token {old_token} -> {new_token}; the resumed instance's "
        f"{len(stale)} old sessions sent no STORE/EXPUNGE; refused destructive steps: {fenced}"
    )
