"""Many watched mailboxes in one fetcher: what an idle account costs, how fast new mail on any
of them arrives, and a big first sync beside them (``bench/fetch.py --accounts N``).

    .venv/bin/python bench/fetch.py --accounts 300 [--idle-seconds 30] [--probes 40]
    .venv/bin/python bench/fetch.py --accounts 300 --first-sync 100000 [--probes 40]

Starts a private Dovecot with N users, the MongoDB stand-in (or ``--mongo-url``) and a
RabbitMQ vhost, and runs the fetcher's supervisor for N IMAP accounts (IDLE where the server
offers it, a poll interval of 300 s otherwise) in a child process, whose memory, CPU time
and connections this process reads from ``/proc``:

- idle cost: the child's RSS before any account and once all N are watched, divided by N
  (MiB per account), its CPU seconds over ``--idle-seconds`` of nothing happening, divided by
  N and scaled to a minute, and the IMAP connections it holds;
- new-mail latency: ``--probes`` times, one mail APPENDed to a random account, timed until
  its ``mail.received`` reaches the processor's queue: p50/p95/max.

With ``--first-sync M`` the first account holds M mails before the fetcher starts: while it
syncs, the probes go to the other accounts (their p95 is what a big mailbox must not spoil),
and the sync's rate and the child's peak RSS are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import imaplib
import json
import os
import random
import shutil
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aio_pika

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402
from deploy.local._proc import tail  # noqa: E402
from deploy.local.dovecot import Dovecot  # noqa: E402
from deploy.local.servers import create_vhost, delete_vhost, start_dovecot, start_mongodb  # noqa: E402
from shared.models.messages import MailReceived  # noqa: E402
from shared.topology import PROCESSOR_INBOUND  # noqa: E402

POLL_SECONDS = 300.0
WAIT_SECONDS = 60.0
BIG = "u0"
"""The account that holds the first sync's mail."""


def users(count: int) -> dict[str, str]:
    """The bench's Dovecot users."""
    return {f"u{i}": f"pw{i}" for i in range(count)}


def small_mail(n: int, size: int = 3072) -> bytes:
    """A mail of about ``size`` bytes with a unique Message-ID."""
    head = (
        f"From: Customer {n} <c{n}@example.org>\r\nTo: support@example.com\r\n"
        f"Subject: Accounts bench {n}\r\nMessage-ID: <acc-{n}-{uuid.uuid4().hex}@example.org>\r\n"
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    line = b"The printer on floor 3 prints only blank pages again, please help.\r\n"
    return head + line * max(1, (size - len(head)) // len(line))


def fill(dovecot: Dovecot, user: str, mails: int) -> None:
    """Put ``mails`` mails in one user's INBOX as a local delivery agent does: each written to
    the Maildir's ``tmp/`` and renamed into ``new/`` (Maildir's delivery protocol), owned by
    the mail user; Dovecot gives them UIDs when the fetcher first opens the mailbox.

    Not APPEND: each APPEND rewrites the mailbox's UID list, so 100,000 of them slow down as
    the mailbox grows (about 90 mail/s near 40,000) and took longer than the sync measured.
    """
    maildir = dovecot.mail_dir / user / "Maildir"
    for sub in ("tmp", "new", "cur"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    for path in (dovecot.mail_dir / user, maildir, *(maildir / s for s in ("tmp", "new", "cur"))):
        os.chown(path, dovecot.uid, dovecot.gid)
    host = socket.gethostname()
    for n in range(mails):
        name = f"{int(time.time())}.M{n}P{os.getpid()}.{host}"
        tmp = maildir / "tmp" / name
        tmp.write_bytes(small_mail(n))
        os.chown(tmp, dovecot.uid, dovecot.gid)
        tmp.rename(maildir / "new" / name)


async def watch(env: dict[str, str]) -> None:
    """The child: the fetcher's supervisor for every account until stdin closes."""
    from services.fetcher.deps import FetcherDeps
    from services.fetcher.supervisor import Supervisor
    from shared.models.config import GlobalSettings, IncomingAccount
    from shared.runtime import Runtime
    from shared.settings import SharedSettings

    rt = Runtime(
        SharedSettings(
            broker_url=env["broker"],
            mongodb_url=env["mongo"],
            database=env["db"],
            secret_key="bench-secret-key-0123456789",
            instance_id="accounts-bench",
            log_json=False,
            log_level="WARNING",
        )
    )
    await rt.start_store()
    await rt.start_broker()
    accounts = {
        user: IncomingAccount(
            name=user,
            protocol="IMAP",
            security="none",  # loopback; TLS is not what is measured
            host="127.0.0.1",
            port=int(env["port"]),
            username=user,
            password=password,
        )
        for user, password in users(int(env["accounts"])).items()
    }
    rt.config = rt.config.model_copy(
        update={
            "accounts": accounts,
            "settings": GlobalSettings(poll_interval_seconds=POLL_SECONDS),
        }
    )
    supervisor = Supervisor(FetcherDeps.of(rt))
    print("baseline", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    await supervisor.start()
    print("started", flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # until the bench is done
    await supervisor.stop()
    await rt.store.client.drop_database(env["db"])
    await rt.broker.stop()
    await rt.close()


def connections(pid: int, port: int) -> int:
    """TCP connections of process ``pid`` to 127.0.0.1:``port`` that are established."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    held = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote, state, inode = fields[2], fields[3], fields[9]
        if state == "01" and int(remote.split(":")[1], 16) == port and inode in inodes:
            held += 1
    return held


def summary(seconds: list[float]) -> str:
    """p50, p95 and max in milliseconds."""
    if not seconds:
        return "no samples"
    ms = sorted(s * 1000 for s in seconds)
    p95 = statistics.quantiles(ms, n=100, method="inclusive")[94] if len(ms) > 1 else ms[0]
    return f"p50 {statistics.median(ms):,.0f} ms, p95 {p95:,.0f} ms, max {ms[-1]:,.0f} ms"


class Probe:
    """Consumes ``mail.received``: times probe mails and counts the first sync's mail."""

    def __init__(self, broker: str, port: int, names: dict[str, str]) -> None:
        self.broker, self.port, self.names = broker, port, names
        self.waiting: dict[str, asyncio.Future[float]] = {}
        self.big_received = 0
        self.big_done_at = 0.0

    async def consume(self, big_total: int) -> None:
        """Read ``mail.received`` until cancelled."""
        connection = await aio_pika.connect(self.broker)
        async with connection:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=1000)
            queue = await channel.declare_queue(PROCESSOR_INBOUND.name, passive=True)
            async with queue.iterator(no_ack=True) as messages:
                async for message in messages:
                    account = MailReceived.model_validate_json(message.body).account
                    if account == BIG and big_total:
                        self.big_received += 1
                        if self.big_received == big_total:
                            self.big_done_at = time.perf_counter()
                    waiter = self.waiting.pop(account, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(time.perf_counter())

    async def one(self, n: int, rng: random.Random) -> float:
        """APPEND one mail to a random account (not the big one) and time its arrival."""
        names = [name for name in self.names if name != BIG] or list(self.names)
        account = rng.choice(names)
        arrived = asyncio.get_running_loop().create_future()
        self.waiting[account] = arrived
        started = time.perf_counter()
        await asyncio.to_thread(self._append_as, account, n)
        done = await asyncio.wait_for(arrived, WAIT_SECONDS)
        return float(done) - started

    def _append_as(self, user: str, n: int) -> None:
        """APPEND one mail to ``user``'s INBOX, logged in as that user."""
        with imaplib.IMAP4("127.0.0.1", self.port, timeout=60) as imap:
            imap.login(user, self.names[user])
            imap.append("INBOX", None, None, small_mail(100_000 + n))


async def measure(args: argparse.Namespace, env: dict[str, str], port: int, log: Path) -> None:
    """Start the child, take the figures, stop it."""
    # Its log (one plain-text login warning per account) goes to a file, shown on failure.
    errors = log.open("wb")
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--child",
        json.dumps(env),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=errors,
        cwd=ROOT,
    )
    assert child.stdin is not None and child.stdout is not None
    names = users(args.accounts)
    probe = Probe(env["broker"], port, names)
    rng = random.Random(1)
    try:
        if (await child.stdout.readline()).strip() != b"baseline":
            raise RuntimeError(f"the fetcher child failed to start:\n{tail(log)}")
        rss0 = harness.rss_mib(child.pid)
        consumer = asyncio.create_task(probe.consume(args.first_sync))
        started = time.perf_counter()
        child.stdin.write(b"go\n")
        await child.stdin.drain()
        await child.stdout.readline()
        for _ in range(360):  # every account has logged in and idles (or 3 minutes passed)
            if connections(child.pid, port) >= args.accounts:
                break
            await asyncio.sleep(0.5)
        watched = time.perf_counter() - started
        held = connections(child.pid, port)
        print(f"{args.accounts} accounts watched after {watched:.1f} s, {held} connections held")
        latencies: list[float] = []
        if args.first_sync:
            while probe.big_received < args.first_sync or len(latencies) < args.probes:
                latencies.append(await probe.one(len(latencies), rng))
                await asyncio.sleep(rng.uniform(0.1, 0.3))
            seconds = probe.big_done_at - started
            print(
                f"first sync of {args.first_sync:,} mails on {BIG}: {seconds:.1f} s = "
                f"{args.first_sync / seconds:,.0f} mail/s, while {len(latencies)} new mails on "
                f"the other accounts took {summary(latencies)}; fetcher peak RSS "
                f"{harness.peak_rss_mib(child.pid):.0f} MiB"
            )
        else:
            await asyncio.sleep(2)  # the first rounds' stragglers
            rss1, cpu1 = harness.rss_mib(child.pid), harness.cpu_seconds(child.pid)
            await asyncio.sleep(args.idle_seconds)
            cpu2 = harness.cpu_seconds(child.pid)
            per_minute = (cpu2 - cpu1) / args.accounts * 60 / args.idle_seconds
            print(
                f"idle cost per account: {(rss1 - rss0) / args.accounts * 1024:,.0f} KiB RSS "
                f"(fetcher {rss0:.0f} → {rss1:.0f} MiB), {per_minute:.4f} CPU-s per minute "
                f"(over {args.idle_seconds:g} s idle), "
                f"{held / args.accounts:.2f} connections"
            )
            for n in range(args.probes):
                latencies.append(await probe.one(n, rng))
                await asyncio.sleep(rng.uniform(0.1, 0.3))
            print(
                f"new mail on any one of {args.accounts} watched accounts, "
                f"{len(latencies)} mails: {summary(latencies)}"
            )
        consumer.cancel()
    finally:
        child.stdin.close()
        try:
            await asyncio.wait_for(child.wait(), 60)
        except TimeoutError:
            child.kill()
        errors.close()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")


def inotify_room(accounts: int) -> None:
    """Make room for one inotify instance per watched account, or say that there is none.

    Dovecot's IDLE learns of new mail through inotify, one instance per IMAP process; past
    the kernel's per-user limit (128 by default) a process falls back to looking every 30 s
    (``mailbox_idle_check_interval``), and the probes would time that fallback (a first run
    with 300 accounts: p50 564 ms, p95 29.8 s). A Dovecot serving many IDLE clients needs
    the same setting (Dovecot's documentation on inotify limits).
    """
    limit = int(INOTIFY_INSTANCES.read_text())
    wanted = accounts + 64
    if limit >= wanted:
        return
    try:
        INOTIFY_INSTANCES.write_text(str(wanted))
        print(f"fs.inotify.max_user_instances raised from {limit} to {wanted} for Dovecot's IDLE")
    except OSError:
        print(
            f"warning: fs.inotify.max_user_instances is {limit} (not root: left as it is); "
            "IDLE on the accounts past it falls back to Dovecot's 30 s check",
            file=sys.stderr,
        )


def main(args: argparse.Namespace) -> None:
    """``bench/fetch.py --accounts N``: servers, the run, cleanup."""
    inotify_room(args.accounts)
    state = Path(tempfile.mkdtemp(prefix="mailroom-accounts-"))
    state.chmod(0o755)
    vhost = f"mailroom-accounts-{uuid.uuid4().hex[:8]}"
    dovecot = start_dovecot(state, users(args.accounts))
    # On a directory: in memory the stand-in's cache is full near 50,000 mails, and a first
    # sync of 100,000 then stalls on the store (and every account's new mail with it).
    mongo = start_mongodb(state, data_dir=state / "mongodb-data")
    try:
        broker = create_vhost(vhost)
        if args.first_sync:
            started = time.perf_counter()
            fill(dovecot, BIG, args.first_sync)
            seconds = time.perf_counter() - started
            print(f"filled {BIG} with {args.first_sync:,} mails in {seconds:.1f} s")
        env = {
            "broker": broker,
            "mongo": mongo.url,
            "db": f"accounts_{uuid.uuid4().hex[:8]}",
            "port": str(dovecot.imap_port),
            "accounts": str(args.accounts),
        }
        asyncio.run(measure(args, env, dovecot.imap_port, state / "fetcher.log"))
    finally:
        delete_vhost(vhost)
        mongo.stop()
        dovecot.stop()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    asyncio.run(watch(json.loads(sys.argv[2])))
