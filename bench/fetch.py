"""Throughput and memory of the fetcher, on a private mail server, MongoDB and RabbitMQ vhost.

    .venv/bin/python bench/fetch.py [--mails 10000] [--size 3072] [--big-mb 50]
                                    [--transport imap|pop3|graph|jmap] [--peer mbsync]
                                    [--mongo-url mongodb://host:27017/]
    .venv/bin/python bench/fetch.py --accounts 300 [--first-sync 100000]   (see fetch_accounts.py)

``--transport`` picks the protocol the fetcher uses and the server behind it
(:data:`TRANSPORTS`): ``imap`` and ``pop3`` a private Dovecot, ``graph`` the local Graph
stand-in with the local OAuth issuer (client credentials; both in threads of this process,
so their CPU is not the fetcher's), ``jmap`` a private Cyrus (``deploy.local.cyrus``).

1. Loads N mails of about SIZE bytes into the server's inbox (Dovecot: IMAP APPEND; Graph:
   the stand-in's control API; Cyrus: blob upload and ``Email/import``), then drains it
   through the fetcher's real round (``fetch_once``: the adapter's listing and fetch, one
   insert per chunk into MongoDB, ``mail.received`` published with confirms, the status
   update, the disposal ``delete``) and prints mail/s, the CPU seconds the draining process
   spent per 1,000 mails (less noisy than wall time on a shared machine) and its peak RSS.
   With ``--peer mbsync`` Debian's isync first copies the same mailbox to a Maildir with
   ``FSync yes`` (the durable peer a user would run instead; over IMAP, and leaving the
   mailbox as it was) in the same run, and the ratio Mailroom/mbsync is printed; mbsync
   reads IMAP only, so for ``graph`` and ``jmap`` it says so and is not run.
2. Runs the same MongoDB writes without the fetcher (insert_many per chunk, then the status
   update, through the real repository) and prints what MongoDB alone sustains: when that
   is not far above the drain's mail/s, the database caps the figure, not the fetcher.
3. Puts one mail of BIG-MB megabytes there and drains it in a fresh process (so the peak
   belongs to that mail alone): prints its peak RSS above the process's baseline
   (``--big-mb 0`` leaves this out).

Each phase runs in a child process of its own (``--phase``, settings on its stdin) so that
its peak RSS and its CPU time measure exactly that phase. Starts its own servers and removes
them afterwards; MongoDB is the local stand-in unless ``--mongo-url`` (or ``MONGODB_URL``)
names a real one.
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
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy.local._proc import apt_install, tool  # noqa: E402
from deploy.local.cyrus import start_cyrus  # noqa: E402
from deploy.local.graph_standin import start_graph_standin  # noqa: E402
from deploy.local.oauth_issuer import start_oauth_issuer  # noqa: E402
from deploy.local.servers import (  # noqa: E402
    MongoServer,
    create_vhost,
    delete_vhost,
    start_dovecot,
    start_mongodb,
)
from services.fetcher.deps import FetcherDeps  # noqa: E402
from services.fetcher.ingest import BATCH_SIZE, fetch_once  # noqa: E402
from shared.mailbox import open_mailbox  # noqa: E402
from shared.models.config import IncomingAccount  # noqa: E402
from shared.models.records import RawEmail  # noqa: E402
from shared.runtime import Runtime  # noqa: E402
from shared.settings import SharedSettings  # noqa: E402

USER, PASSWORD = "bench", "benchpw"


class BenchServer(Protocol):
    """A running server holding the bench's one mailbox, seen the same way for every transport."""

    mbsync_port: int | None
    """The IMAP port ``--peer mbsync`` copies the same mailbox from; None: not over IMAP."""

    def load(self, raws: Sequence[bytes]) -> None:
        """Put ``raws`` into the mailbox's inbox, byte for byte."""

    def account(self) -> dict[str, str]:
        """The fields of the :class:`IncomingAccount` the fetcher drains the mailbox with
        (without ``name`` and ``after_fetch``); handed to the child phase on its stdin."""

    def stop(self) -> None:
        """Stop the server and whatever it started."""


class DovecotServer:
    """Dovecot, reached over IMAP or POP3 (plain text on loopback: TLS is not measured)."""

    def __init__(self, state: Path, protocol: Literal["IMAP", "POP3"]) -> None:
        self.dovecot = start_dovecot(state, {USER: PASSWORD})
        self.protocol = protocol
        self.mbsync_port: int | None = self.dovecot.imap_port

    def load(self, raws: Sequence[bytes]) -> None:
        """APPEND with 4 IMAP connections."""

        def worker(part: Sequence[bytes]) -> None:
            imap = imaplib.IMAP4("127.0.0.1", self.dovecot.imap_port, timeout=120)
            imap.login(USER, PASSWORD)
            for raw in part:
                imap.append("INBOX", None, None, raw)
            imap.logout()

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(worker, [raws[i::4] for i in range(4)]))

    def account(self) -> dict[str, str]:
        """Plain-text IMAP or POP3 on the loopback port of that protocol."""
        port = self.dovecot.imap_port if self.protocol == "IMAP" else self.dovecot.pop3_port
        return {
            "protocol": self.protocol,
            "security": "none",
            "host": "127.0.0.1",
            "port": str(port),
            "username": USER,
            "password": PASSWORD,
        }

    def stop(self) -> None:
        """Stop Dovecot."""
        self.dovecot.stop()


class GraphServer:
    """The local Graph stand-in with the local OAuth issuer, both in threads of this (the
    parent) process: their CPU is not counted in the draining child's figure. An app
    registration (client credentials) is allowed to use the mailbox, as in the contract
    suite's ``graph_server``."""

    UPN, APP, APP_USER = "bench@contoso.test", "bench-app", "bench-app@apps.contoso.test"

    def __init__(self, state: Path) -> None:
        self.issuer = start_oauth_issuer(state)
        self.standin = start_graph_standin(state, self.issuer.introspect)
        self.secret = uuid.uuid4().hex
        self.issuer.add_client(self.APP, self.secret, self.APP_USER)
        self.standin.add_mailbox(self.UPN)
        self.standin.allow(self.APP_USER, self.UPN)
        self.mbsync_port: int | None = None

    def load(self, raws: Sequence[bytes]) -> None:
        """Deliver through the stand-in's control API (no request)."""
        for raw in raws:
            self.standin.deliver(self.UPN, raw)

    def account(self) -> dict[str, str]:
        """Client credentials from the local issuer, the stand-in as ``graph_url``."""
        return {
            "protocol": "GRAPH",
            "username": self.UPN,
            "auth": "oauth2",
            "client_id": self.APP,
            "client_secret": self.secret,
            "authority": self.issuer.authority(),
            "oauth_ca_file": str(self.issuer.ca_file),
            "graph_url": self.standin.url,
            "ca_file": str(self.standin.ca_file),
        }

    def stop(self) -> None:
        """Stop the stand-in and the issuer."""
        self.standin.stop()
        self.issuer.stop()


class CyrusServer:
    """A private Cyrus serving JMAP (``deploy.local.cyrus``; Basic auth)."""

    IMPORT_BATCH = 100
    """Emails per ``Email/import`` call."""

    def __init__(self, state: Path) -> None:
        self.cyrus = start_cyrus(state, {USER: PASSWORD})
        self.mbsync_port: int | None = None

    def load(self, raws: Sequence[bytes]) -> None:
        """Upload the blobs (4 at a time), then ``Email/import`` them in batches: much faster
        than LMTP, and byte for byte (LMTP adds a Return-Path and a Received header)."""
        auth = self.cyrus.auth_header(USER)
        upload_url = f"{self.cyrus.base_url}/jmap/upload/{USER}/"
        mailboxes = self.cyrus.call(USER, "Mailbox/get", {"properties": ["role"]})["list"]
        inbox = next(str(m["id"]) for m in mailboxes if m["role"] == "inbox")
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with httpx.Client(headers=auth, timeout=300) as http, ThreadPoolExecutor(4) as pool:

            def upload(raw: bytes) -> str:
                headers = {"Content-Type": "message/rfc822"}
                answer = http.post(upload_url, content=raw, headers=headers)
                answer.raise_for_status()
                return str(answer.json()["blobId"])

            for first in range(0, len(raws), self.IMPORT_BATCH):
                blobs = pool.map(upload, raws[first : first + self.IMPORT_BATCH])
                emails = {
                    f"m{n}": {"blobId": blob, "mailboxIds": {inbox: True}, "receivedAt": now}
                    for n, blob in enumerate(blobs)
                }
                created = self.cyrus.call(USER, "Email/import", {"emails": emails})
                if len(created.get("created") or {}) != len(emails):
                    raise RuntimeError(f"Email/import refused: {created.get('notCreated')}")

    def account(self) -> dict[str, str]:
        """Basic auth against the instance's JMAP session."""
        return {
            "protocol": "JMAP",
            "host": "127.0.0.1",
            "jmap_url": self.cyrus.base_url,
            "username": USER,
            "password": PASSWORD,
        }

    def stop(self) -> None:
        """Stop Cyrus."""
        self.cyrus.stop()


TRANSPORTS: dict[str, Callable[[Path], BenchServer]] = {
    "imap": lambda state: DovecotServer(state, "IMAP"),
    "pop3": lambda state: DovecotServer(state, "POP3"),
    "graph": GraphServer,
    "jmap": CyrusServer,
}
"""``--transport`` → how to start its server (under the bench's state directory) with the
bench's mailbox: the server then loads mail and builds the account. A new mailbox adapter
adds a line here."""

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


def run_mbsync(state: Path, port: int) -> tuple[int, float]:
    """Copy the bench's mailbox with Debian's ``mbsync`` to a Maildir (``FSync yes``), as a
    user would instead of Mailroom; the mailbox itself is left as it was. Returns the mails
    copied and the seconds it took."""
    if tool("mbsync") is None:
        apt_install("isync")
    maildir = state / "mbsync"
    maildir.mkdir()
    conf = state / "mbsyncrc"
    conf.write_text(MBSYNC_CONF.format(port=port, user=USER, password=PASSWORD, maildir=maildir))
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


def bench_settings(env: dict[str, Any]) -> SharedSettings:
    """The settings of a child phase."""
    return SharedSettings(
        broker_url=env["broker"],
        mongodb_url=env["mongo"],
        database=env["db"],
        secret_key="bench-secret-key-0123456789",
        instance_id="bench",
        log_json=False,
    )


async def drain(env: dict[str, Any]) -> dict[str, float]:
    """The child: drain the mailbox through fetch_once; return figures."""
    rt = Runtime(bench_settings(env))
    await rt.start_store()
    await rt.start_broker()
    account = IncomingAccount.model_validate(
        {"name": "bench", "after_fetch": "delete", **env["account"]}
    )
    mailbox = open_mailbox(account, timeout=120)
    baseline = current_rss_mb()
    started, cpu = time.perf_counter(), cpu_seconds()
    deps = FetcherDeps.of(rt)
    stored = 0
    try:
        while (new := await fetch_once(deps, account, mailbox)) > 0:
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


async def store_only(env: dict[str, Any]) -> dict[str, float]:
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


def restart(mongo: MongoServer, state: Path) -> MongoServer:
    """The stand-in started afresh (empty); a real MongoDB given by URL is kept as it is."""
    mongo.stop()
    return start_mongodb(state)


def child(phase_env: dict[str, Any]) -> dict[str, float]:
    """Run one phase in a fresh process and read its figures; its settings (the account's
    password or client secret among them) go on its stdin, never on its command line."""
    out = subprocess.run(
        [sys.executable, __file__, "--phase"],
        input=json.dumps(phase_env),
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
    parser.add_argument("--phase", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        env = json.loads(sys.stdin.read())
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
    server = TRANSPORTS[args.transport](state)
    mongo = start_mongodb(state)
    try:
        broker = create_vhost(vhost)
        base = {"broker": broker, "mongo": mongo.url, "account": server.account()}
        started = time.perf_counter()
        server.load([mail(n, args.size) for n in range(args.mails)])
        seconds = time.perf_counter() - started
        print(f"{args.transport}: loaded {args.mails} mails of ~{args.size} B in {seconds:.1f} s")
        peer_rate, mbsync_port = 0.0, server.mbsync_port
        if args.peer == "mbsync" and mbsync_port is None:
            print(f"mbsync: not run (it reads over IMAP; {args.transport}'s server has no IMAP)")
        elif args.peer == "mbsync" and mbsync_port is not None:
            copied, peer_seconds = run_mbsync(state, mbsync_port)
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
                f"ratio Mailroom ({args.transport}) / mbsync (IMAP), same run: "
                f"{rate / peer_rate:.2f}"
            )
        # A fresh stand-in for each phase that follows: after 10,000 mails and their oplog
        # its 256 MiB in-memory cache has no room for the same again ("internal server
        # error"). A real MongoDB is kept.
        mongo = restart(mongo, state)
        base["mongo"] = mongo.url
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
        mongo = restart(mongo, state)
        base["mongo"] = mongo.url
        big_size = int(args.big_mb * 1024 * 1024)
        fill_big = mail(0, big_size)
        mail_mb = len(fill_big) / 1024 / 1024
        server.load([fill_big])
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
        server.stop()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
