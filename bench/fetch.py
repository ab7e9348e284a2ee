"""Throughput and memory of the fetcher, on a private Dovecot, MongoDB and RabbitMQ vhost.

    .venv/bin/python bench/fetch.py [--mails 10000] [--size 3072] [--big-mb 50]

1. Fills a Dovecot INBOX with N mails of about SIZE bytes (IMAP APPEND), then drains it
   through the fetcher's real round (``fetch_once``: UID FETCH in batches, one insert per
   chunk into MongoDB, ``mail.received`` published with confirms, UID EXPUNGE) and prints
   mail/s and the peak RSS of the draining process.
2. Puts one mail of BIG-MB megabytes there and drains it in a fresh process (so the peak
   belongs to that mail alone): prints its peak RSS above the process's baseline.

Each drain runs in a child process of its own (``--phase``) so that ``ru_maxrss`` measures
exactly that drain. Starts its own servers and removes them afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import imaplib
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy.local.servers import (  # noqa: E402
    create_vhost,
    delete_vhost,
    start_dovecot,
    start_mongodb,
)
from services.fetcher.ingest import fetch_once  # noqa: E402
from shared.mailbox import open_mailbox  # noqa: E402
from shared.models.config import IncomingAccount  # noqa: E402
from shared.runtime import Runtime  # noqa: E402
from shared.settings import SharedSettings  # noqa: E402

USER, PASSWORD = "bench", "benchpw"


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
    """Peak RSS of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """RSS of this process now, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return rss_mb()


async def drain(env: dict[str, str]) -> dict[str, float]:
    """The child: drain the mailbox through fetch_once; return figures."""
    settings = SharedSettings(
        broker_url=env["broker"],
        mongodb_url=env["mongo"],
        database=env["db"],
        secret_key="bench-secret-key-0123456789",
        instance_id="bench",
        log_json=False,
    )
    rt = Runtime(settings)
    await rt.start_store()
    await rt.start_broker()
    account = IncomingAccount(
        name="bench",
        protocol="IMAP",
        security="none",  # loopback; TLS is not what is measured
        host="127.0.0.1",
        port=int(env["port"]),
        username=USER,
        password=PASSWORD,
        delete_read_messages="yes",
    )
    mailbox = open_mailbox(account, timeout=120)
    baseline = current_rss_mb()
    started = time.perf_counter()
    stored = 0
    try:
        while (new := await fetch_once(rt, account, mailbox)) > 0:
            stored += new
    finally:
        await mailbox.close()
    seconds = time.perf_counter() - started
    total = await rt.store.raw_emails.count()
    await rt.broker.stop()
    await rt.close()
    return {
        "stored": stored,
        "in_db": total,
        "seconds": seconds,
        "baseline_mb": baseline,
        "peak_mb": rss_mb(),
    }


def child(phase_env: dict[str, str]) -> dict[str, float]:
    """Run one drain in a fresh process and read its figures."""
    out = subprocess.run(
        [sys.executable, __file__, "--phase", json.dumps(phase_env)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=3 * 1024)
    parser.add_argument("--big-mb", type=float, default=50.0)
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(asyncio.run(drain(json.loads(args.phase)))))
        return

    state = Path(tempfile.mkdtemp(prefix="mailroom-bench-"))
    state.chmod(0o755)
    vhost = f"mailroom-bench-{uuid.uuid4().hex[:8]}"
    dovecot = start_dovecot(state, {USER: PASSWORD})
    mongo = start_mongodb(state)
    try:
        broker = create_vhost(vhost)
        base = {"broker": broker, "mongo": mongo.url, "port": str(dovecot.imap_port)}
        seconds = fill(dovecot.imap_port, args.mails, args.size)
        print(f"filled {args.mails} mails of ~{args.size} B in {seconds:.1f} s")
        small = child(base | {"db": f"bench_{uuid.uuid4().hex[:8]}"})
        rate = small["stored"] / small["seconds"]
        print(
            f"drained {small['stored']:.0f} mails ({small['in_db']:.0f} in MongoDB) in "
            f"{small['seconds']:.2f} s: {rate:,.0f} mail/s; peak RSS {small['peak_mb']:.0f} MiB "
            f"(baseline {small['baseline_mb']:.0f} MiB)"
        )

        big_size = int(args.big_mb * 1024 * 1024)
        fill_big = mail(0, big_size)
        with imaplib.IMAP4("127.0.0.1", dovecot.imap_port, timeout=120) as imap:
            imap.login(USER, PASSWORD)
            imap.append("INBOX", None, None, fill_big)
        big = child(base | {"db": f"bench_{uuid.uuid4().hex[:8]}"})
        growth = big["peak_mb"] - big["baseline_mb"]
        mail_mb = len(fill_big) / 1024 / 1024
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
