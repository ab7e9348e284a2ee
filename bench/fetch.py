"""Throughput and memory of the fetcher, on a private Dovecot, MongoDB and RabbitMQ vhost.

    .venv/bin/python bench/fetch.py [--mails 10000] [--size 3072] [--big-mb 50]
                                    [--transport imap|pop3] [--peer mbsync]
                                    [--mongo-url mongodb://host:27017/]
    .venv/bin/python bench/fetch.py --accounts 300 [--first-sync 100000]   (see fetch_accounts.py)

1. Fills a Dovecot INBOX with N mails of about SIZE bytes (IMAP APPEND), then drains it
   through the fetcher's real round (``fetch_once``: UID FETCH in batches, one insert per
   chunk into MongoDB, ``mail.received`` published with confirms, the status update, UID
   EXPUNGE) and prints mail/s, the CPU seconds the draining process spent per 1,000 mails
   (less noisy than wall time on a shared machine) and its peak RSS. ``--transport`` picks
   the protocol the fetcher uses (:data:`TRANSPORTS`; IMAP by default). With ``--peer
   mbsync`` Debian's isync first copies the same mailbox to a Maildir with ``FSync yes`` (the
   durable peer a user would run instead; over IMAP, and leaving the mailbox as it was) in
   the same run, and the ratio Mailroom/mbsync is printed.
2. Runs the same MongoDB writes without the fetcher (insert_many per chunk, then the status
   update, through the real repository) and prints what MongoDB alone sustains: when that
   is not far above the drain's mail/s, the database caps the figure, not the fetcher.
3. Puts one mail of BIG-MB megabytes there and drains it in a fresh process (so the peak
   belongs to that mail alone): prints its peak RSS above the process's baseline
   (``--big-mb 0`` leaves this out).

Each phase runs in a child process of its own (``--phase``) so that its peak RSS and its
CPU time measure exactly that phase. Starts its own servers and removes them afterwards;
MongoDB is the local stand-in unless ``--mongo-url`` (or ``MONGODB_URL``) names a real one.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import imaplib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy.local._proc import apt_install, tool  # noqa: E402
from deploy.local.servers import (  # noqa: E402
    Dovecot,
    create_vhost,
    delete_vhost,
    start_dovecot,
    start_mongodb,
)
from services.fetcher.ingest import BATCH_SIZE, fetch_once  # noqa: E402
from shared.mailbox import open_mailbox  # noqa: E402
from shared.models.config import IncomingAccount  # noqa: E402
from shared.models.records import RawEmail  # noqa: E402
from shared.runtime import Runtime  # noqa: E402
from shared.settings import SharedSettings  # noqa: E402

USER, PASSWORD = "bench", "benchpw"


@dataclass(frozen=True)
class Transport:
    """How the fetcher reaches the bench's Dovecot with one protocol."""

    protocol: Literal["IMAP", "POP3"]
    port: str
    """The :class:`Dovecot` attribute holding the plain-text port."""


TRANSPORTS = {
    "imap": Transport("IMAP", "imap_port"),
    "pop3": Transport("POP3", "pop3_port"),
}
"""The protocols ``--transport`` offers; a new mailbox adapter adds its line here."""

MBSYNC_CONF = """\
FSync yes

IMAPAccount bench
Host 127.0.0.1
Port {port}
User {user}
Pass {password}
SSLType None
AuthMechs LOGIN

IMAPStore far
Account bench

MaildirStore near
Path {maildir}/
Inbox {maildir}/INBOX

Channel bench
Far :far:
Near :near:
Patterns INBOX
Sync Pull
Create Near
Expunge None
SyncState *
"""


def run_mbsync(state: Path, dovecot: Dovecot) -> tuple[int, float]:
    """Copy the bench's mailbox with Debian's ``mbsync`` to a Maildir (``FSync yes``), as a
    user would instead of Mailroom; the mailbox itself is left as it was. Returns the mails
    copied and the seconds it took."""
    if tool("mbsync") is None:
        apt_install("isync")
    maildir = state / "mbsync"
    maildir.mkdir()
    conf = state / "mbsyncrc"
    conf.write_text(
        MBSYNC_CONF.format(port=dovecot.imap_port, user=USER, password=PASSWORD, maildir=maildir)
    )
    conf.chmod(0o600)
    started = time.perf_counter()
    subprocess.run(
        ["mbsync", "-q", "-c", str(conf), "bench"], check=True, capture_output=True, timeout=600
    )
    seconds = time.perf_counter() - started
    return len(list((maildir / "INBOX" / "new").iterdir())), seconds


def mail(n: int, size: int) -> bytes:
    """Mail number ``n`` of about ``size`` bytes, CRLF lines."""
    head = (
        f"From: Customer {n} <c{n}@example.org>\r\nTo: support@example.com\r\n"
        f"Subject: Bench mail {n}\r\nMessage-ID: <bench-{n}-{uuid.uuid4().hex}@example.org>\r\n"
        "Date: Mon, 23 Nov 2026 12:00:00 +0000\r\nContent-Type: text/plain\r\n\r\n"
    ).encode()
    line = b"The printer on floor 3 prints only blank pages again, please help.\r\n"
    return head + line * max(1, (size - len(head)) // len(line))


def fill(port: int, mails: int, size: int) -> float:
    """APPEND ``mails`` mails with 4 connections; returns the seconds it took."""
    started = time.perf_counter()

    def worker(numbers: range) -> None:
        imap = imaplib.IMAP4("127.0.0.1", port, timeout=60)
        imap.login(USER, PASSWORD)
        for n in numbers:
            imap.append("INBOX", None, None, mail(n, size))
        imap.logout()

    parts = [range(i, mails, 4) for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(worker, parts))
    return time.perf_counter() - started


def rss_mb() -> float:
    """Peak RSS of this process so far, in MiB.

    Read from ``VmHWM``, not ``ru_maxrss``: Linux carries ``ru_maxrss`` over from the parent
    through fork and exec, so a child started while this bench held a 50 MiB mail and
    imaplib's copies of it reported the parent's 390 MiB as its own peak.
    """
    return _status_mb("VmHWM")


def cpu_seconds() -> float:
    """User plus system CPU time of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def current_rss_mb() -> float:
    """RSS of this process now, in MiB."""
    return _status_mb("VmRSS")


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (in KiB there), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status (this bench needs Linux)")


def bench_settings(env: dict[str, str]) -> SharedSettings:
    """The settings of a child phase."""
    return SharedSettings(
        broker_url=env["broker"],
        mongodb_url=env["mongo"],
        database=env["db"],
        secret_key="bench-secret-key-0123456789",
        instance_id="bench",
        log_json=False,
    )


async def drain(env: dict[str, str]) -> dict[str, float]:
    """The child: drain the mailbox through fetch_once; return figures."""
    rt = Runtime(bench_settings(env))
    await rt.start_store()
    await rt.start_broker()
    account = IncomingAccount(
        name="bench",
        protocol=TRANSPORTS[env["transport"]].protocol,
        security="none",  # loopback; TLS is not what is measured
        host="127.0.0.1",
        port=int(env["port"]),
        username=USER,
        password=PASSWORD,
        after_fetch="delete",
    )
    mailbox = open_mailbox(account, timeout=120)
    baseline = current_rss_mb()
    started, cpu = time.perf_counter(), cpu_seconds()
    stored = 0
    try:
        while (new := await fetch_once(rt, account, mailbox)) > 0:
            stored += new
    finally:
        await mailbox.close()
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    total = await rt.store.raw_emails.count()
    # The stand-in keeps everything in its cache: free it for the next phase.
    await rt.store.client.drop_database(env["db"])
    await rt.broker.stop()
    await rt.close()
    return {
        "stored": stored,
        "in_db": total,
        "seconds": seconds,
        "cpu": cpu,
        "baseline_mb": baseline,
        "peak_mb": rss_mb(),
    }


async def store_only(env: dict[str, str]) -> dict[str, float]:
    """The child: the drain's MongoDB writes for the same mails, without the fetcher."""
    rt = Runtime(bench_settings(env))
    await rt.start_store()
    repo = rt.store.raw_emails
    mails, size = int(env["mails"]), int(env["size"])
    started = time.perf_counter()
    for first in range(0, mails, BATCH_SIZE):
        chunk = []
        for n in range(first, min(mails, first + BATCH_SIZE)):
            data = mail(n, size)
            record = RawEmail(
                account="bench",
                source_key=f"1:{n + 1}",
                folder="INBOX",
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                message_id=f"<bench-{n}@example.org>",
            )
            chunk.append((record, data))
        stored = await repo.insert_many(records=chunk)
        await repo.set_status_many(
            raw_ids=[record.id for record, _ in stored], status="announced", only_from=("stored",)
        )
    seconds = time.perf_counter() - started
    await rt.store.client.drop_database(env["db"])
    await rt.close()
    return {"stored": mails, "seconds": seconds}


def child(phase_env: dict[str, str]) -> dict[str, float]:
    """Run one drain in a fresh process and read its figures."""
    out = subprocess.run(
        [sys.executable, __file__, "--phase", json.dumps(phase_env)],
        check=False,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"bench phase failed:\n{out.stderr[-3000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=3 * 1024)
    parser.add_argument("--big-mb", type=float, default=50.0)
    parser.add_argument("--transport", choices=sorted(TRANSPORTS), default="imap")
    parser.add_argument("--peer", choices=["mbsync"], help="run this peer in the same run")
    parser.add_argument("--accounts", type=int, help="N watched accounts (fetch_accounts.py)")
    parser.add_argument("--first-sync", type=int, default=0, help="with --accounts: M mails")
    parser.add_argument("--idle-seconds", type=float, default=30.0, help="with --accounts")
    parser.add_argument("--probes", type=int, default=40, help="with --accounts: new mails")
    parser.add_argument("--mongo-url", help="a real MongoDB instead of the local stand-in")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        env = json.loads(args.phase)
        phase = store_only if env.get("phase") == "store" else drain
        print(json.dumps(asyncio.run(phase(env))))
        return
    if args.mongo_url:
        os.environ["MONGODB_URL"] = args.mongo_url  # start_mongodb then uses it
    if args.accounts:
        from bench import fetch_accounts

        fetch_accounts.main(args)
        return

    state = Path(tempfile.mkdtemp(prefix="mailroom-bench-"))
    state.chmod(0o755)
    vhost = f"mailroom-bench-{uuid.uuid4().hex[:8]}"
    dovecot = start_dovecot(state, {USER: PASSWORD})
    mongo = start_mongodb(state)
    try:
        broker = create_vhost(vhost)
        transport = TRANSPORTS[args.transport]
        base = {
            "broker": broker,
            "mongo": mongo.url,
            "port": str(getattr(dovecot, transport.port)),
            "transport": args.transport,
        }
        seconds = fill(dovecot.imap_port, args.mails, args.size)
        print(f"filled {args.mails} mails of ~{args.size} B in {seconds:.1f} s")
        peer_rate = 0.0
        if args.peer == "mbsync":
            copied, peer_seconds = run_mbsync(state, dovecot)
            peer_rate = copied / peer_seconds
            print(
                f"mbsync (isync, IMAP → Maildir, FSync yes): {copied} mails in "
                f"{peer_seconds:.2f} s: {peer_rate:,.0f} mail/s"
            )
        small = child(base | {"db": f"bench_{uuid.uuid4().hex[:8]}"})
        rate = small["stored"] / small["seconds"]
        cpu_per_1000 = small["cpu"] / max(small["stored"], 1) * 1000
        print(
            f"drained {small['stored']:.0f} mails ({small['in_db']:.0f} in MongoDB) in "
            f"{small['seconds']:.2f} s: {rate:,.0f} mail/s; CPU {cpu_per_1000:.2f} s per 1,000 "
            f"mails (its own CPU would allow {1000 / cpu_per_1000:,.0f} mail/s on one core); "
            f"peak RSS {small['peak_mb']:.0f} MiB (baseline {small['baseline_mb']:.0f} MiB)"
        )
        if peer_rate:
            print(
                f"ratio Mailroom ({transport.protocol}) / mbsync (IMAP), same run: "
                f"{rate / peer_rate:.2f}"
            )
        store = child(
            base
            | {
                "db": f"bench_{uuid.uuid4().hex[:8]}",
                "phase": "store",
                "mails": str(args.mails),
                "size": str(args.size),
            }
        )
        print(
            f"MongoDB alone, the same writes (insert_many per {BATCH_SIZE}, status update): "
            f"{store['stored'] / store['seconds']:,.0f} mail/s"
        )

        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        if args.big_mb <= 0:
            return
        # A fresh stand-in: after 20,000 mails its 256 MiB cache (and oplog) has no room for
        # 50 MiB more and it answers "internal server error". A real MongoDB is kept.
        mongo.stop()
        mongo = start_mongodb(state)
        base["mongo"] = mongo.url
        big_size = int(args.big_mb * 1024 * 1024)
        fill_big = mail(0, big_size)
        mail_mb = len(fill_big) / 1024 / 1024
        with imaplib.IMAP4("127.0.0.1", dovecot.imap_port, timeout=120) as imap:
            imap.login(USER, PASSWORD)
            imap.append("INBOX", None, None, fill_big)
        del fill_big
        big = child(base | {"db": f"bench_{uuid.uuid4().hex[:8]}"})
        growth = big["peak_mb"] - big["baseline_mb"]
        print(
            f"one {mail_mb:.0f} MiB mail: peak RSS {big['peak_mb']:.0f} MiB, "
            f"{growth:.0f} MiB above the baseline of {big['baseline_mb']:.0f} MiB "
            f"= {growth / mail_mb:.1f}x the mail ({big['seconds']:.1f} s)"
        )
    finally:
        delete_vhost(vhost)
        mongo.stop()
        dovecot.stop()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
