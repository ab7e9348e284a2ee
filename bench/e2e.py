"""The whole pipeline: mail in Dovecot → case in MongoDB → acknowledgement at the SMTP sink.

    .venv/bin/python bench/e2e.py [--mails 5000] [--rate 0] [--replies 0.2]
                                  [--preload-cases 0] [--all-in-one] [--mongo-url URL]
    .venv/bin/python bench/e2e.py --big-mb 50

Starts, under one temporary directory: the MongoDB stand-in on a directory of its own (or
uses ``--mongo-url``, a real MongoDB, as given), a vhost of its own on the machine's
RabbitMQ, Dovecot and the SMTP sink. ``--preload-cases N`` first fills the store with N cases
(one incoming mail each, bulk inserts), so that per-mail figures at 1,000 and at 100,000
cases can be compared. Then it runs the four services as separate processes (or, with
``--all-in-one``, ``mailroom run all`` in one), configured over the config API, each with
``MAILROOM_BENCH_COUNTS`` set so that it counts its MongoDB commands and AMQP publishes
(``shared/bench_counts.py``). It APPENDs N mails to the mailbox (``--rate`` mails/s, default
as fast as Dovecot takes them) — realistic sizes: plain text of 1-6 KB, text with HTML of
8-30 KB, one in ten with a 30-400 KB attachment; ``--replies`` of them answer a case that
exists already (a preloaded one, else one opened 50 mails earlier in this run) — and waits
until every mail is in a case and every new case's acknowledgement reached the sink.

It prints, from the first APPEND to the last case or acknowledgement:

- ``mail/s``: N divided by that time, end to end.
- latency ``delivery → case`` (APPEND answered → the mail recorded in its case) and
  ``delivery → ack`` (→ the sink accepted the acknowledgement), p50/p95/p99. With the default
  rate every mail is in Dovecot at once, so these are mostly the backlog's wait; give
  ``--rate`` below the end-to-end rate to see the latency of a mail that finds no queue.
- per service: MongoDB commands per mail (by command name with ``-v``), publishes per mail,
  CPU seconds per 1,000 mails and peak RSS. Counts and CPU are taken from when the services
  were configured and idle to the end, so idle work (lease heartbeats, polls) is included.
- the MongoDB stand-in's CPU seconds per 1,000 mails: near 1,000 / (mail/s) it is the
  stand-in's one core that caps the run.

``--big-mb M`` sends one mail of M MiB (a line of text and a scan) through instead of the
N mails, and prints each service's peak RSS above its RSS when idle, as a multiple of the
mail's size: what one big mail costs each stage (over the processor's size limit the
attachment is stripped, streamed and never decoded).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import imaplib
import json
import os
import random
import shutil
import signal
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402
from bench.harness import ALL, SERVICES, Mongo, Services  # noqa: E402
from deploy.local._proc import HOST  # noqa: E402
from deploy.local.dovecot import Dovecot, start_dovecot  # noqa: E402
from deploy.local.servers import (  # noqa: E402
    SmtpSink,
    create_vhost,
    delete_vhost,
    make_cert,
    start_smtp_sink,
)
from shared.bench_counts import ENV as COUNTS_ENV  # noqa: E402
from shared.models.records import Case, CaseMessage  # noqa: E402
from shared.store import open_store  # noqa: E402
from shared.store.cases import CASE_COUNTER, FIRST_CASE_NUMBER  # noqa: E402

TOKEN = "e2e-api-token-0123456789"
SECRET = "e2e-secret-key-0123456789"
USER, PASSWORD = "support", "supportpw"
DATABASE = f"e2e_{uuid.uuid4().hex[:8]}"
"""The run's own database, dropped at its end (a real MongoDB may hold others)."""
REPLY_GAP = 50
"""A reply in the run answers a mail this many mails older: its case exists by then."""
STALL_SECONDS = 120.0
"""Give up waiting when nothing changed for this long (a broken run still prints)."""
PRELOAD_BATCH = 1000
LINE = "The printer on floor 3 prints only blank pages again since the update, please help.\n"


@dataclass
class Mail:
    """One mail of the run."""

    message_id: str
    data: bytes
    reply: bool


def make_mails(count: int, replies: float, preloaded: int, seed: int) -> list[Mail]:
    """The run's mails: realistic sizes, some with attachments, some replies to cases."""
    rng = random.Random(seed)
    mails: list[Mail] = []
    for i in range(count):
        msg = EmailMessage()
        target: str | None = None
        if rng.random() < replies and (preloaded or i >= REPLY_GAP):
            if preloaded:
                n = rng.randrange(preloaded)
                target, subject, sender = _preload_id(n), f"Re: Preloaded {n}", f"p{n}"
            else:
                j = rng.randrange(i - REPLY_GAP + 1)
                target, subject, sender = mails[j].message_id, f"Re: Bench {j}", f"c{j}"
        else:
            subject, sender = f"Bench {i}: printer trouble", f"c{i}"
        msg["From"] = f"Customer {sender} <{sender}@example.org>"
        msg["To"] = "support@example.org"
        msg["Subject"] = subject
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = make_msgid(domain="bench.example.org")
        if target:
            msg["In-Reply-To"] = target
            msg["References"] = target
        kind = rng.random()
        text = LINE * (rng.randint(1_000, 6_000) // len(LINE))
        msg.set_content(text)
        if kind >= 0.6:  # text with HTML, as most mail programs send
            html = "<p>" + "</p><p>".join([LINE.strip()] * (rng.randint(6_000, 24_000) // 90))
            msg.add_alternative(f"<html><body>{html}</p></body></html>", subtype="html")
        if kind >= 0.9:  # an attachment: a scan, a log, a photo
            blob = rng.randbytes(rng.randint(30_000, 400_000) * 3 // 4)  # base64 grows 4/3
            msg.add_attachment(blob, maintype="application", subtype="pdf", filename="scan.pdf")
        data = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
        mails.append(Mail(str(msg["Message-ID"]), data, target is not None))
    return mails


def make_big_mail(mib: float) -> Mail:
    """One mail of ``mib`` MiB on the wire: a line of text and a scan that big."""
    msg = EmailMessage()
    msg["From"] = "Customer Big <big@example.org>"
    msg["To"] = "support@example.org"
    msg["Subject"] = f"Bench: a {mib:g} MiB scan"
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain="bench.example.org")
    msg.set_content(LINE)
    blob = random.Random(0).randbytes(int(mib * 1024 * 1024) * 3 // 4)  # base64 grows 4/3
    msg.add_attachment(blob, maintype="application", subtype="pdf", filename="scan.pdf")
    data = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
    return Mail(str(msg["Message-ID"]), data, reply=False)


def _preload_id(n: int) -> str:
    return f"<preload-{n}@bench.example.org>"


async def preload(url: str, cases: int) -> float:
    """Fill the store with ``cases`` cases of one incoming mail each; returns the seconds."""
    started = time.perf_counter()
    store = await open_store(url, DATABASE)
    try:
        for first in range(0, cases, PRELOAD_BATCH):
            numbers = range(first, min(cases, first + PRELOAD_BATCH))
            await store.db["cases"].insert_many(
                [
                    Case(number=FIRST_CASE_NUMBER + n, subject=f"Preloaded {n}").model_dump()
                    for n in numbers
                ],
                ordered=False,
            )
            await store.db["messages"].insert_many(
                [
                    CaseMessage(
                        case_number=FIRST_CASE_NUMBER + n,
                        direction="in",
                        message_id=_preload_id(n),
                        subject=f"Preloaded {n}",
                    ).model_dump(by_alias=True)
                    for n in numbers
                ],
                ordered=False,
            )
        # The next case the processor opens follows the preloaded ones.
        await store.db["counters"].update_one(
            {"_id": CASE_COUNTER}, {"$set": {"seq": cases}}, upsert=True
        )
    finally:
        await store.close()
    return time.perf_counter() - started


def deliver(port: int, mails: list[Mail], rate: float) -> dict[str, float]:
    """APPEND the mails over one IMAP connection; per Message-ID the time it was in Dovecot."""
    delivered: dict[str, float] = {}
    imap = imaplib.IMAP4(HOST, port, timeout=60)
    imap.login(USER, PASSWORD)
    started = time.time()
    for i, mail in enumerate(mails):
        if rate > 0:
            time.sleep(max(0.0, started + i / rate - time.time()))
        imap.append("INBOX", None, None, mail.data)
        delivered[mail.message_id] = time.time()
    imap.logout()
    return delivered


def sink_acks(sink: SmtpSink) -> dict[str, float]:
    """Per answered Message-ID, when the sink accepted the acknowledgement (first one)."""
    parser = BytesParser(policy=default_policy)
    acks: dict[str, float] = {}
    for path in sorted((sink.maildir / "new").iterdir()):
        with path.open("rb") as f:
            headers = parser.parsebytes(f.read(16_384), headersonly=True)
        answered = headers.get("In-Reply-To")
        if answered:
            acks.setdefault(str(answered).strip(), int(path.name.split(".")[0]) / 1e9)
    return acks


class Progress:
    """How far the run is, read at a cost that does not grow with the run.

    The stand-in answers a filter on an unindexed field by reading the whole collection
    (30,000 messages: about half a second of its CPU per count), and a lookup of every pending
    Message-ID costs it about 0.2 ms per id (5,000 pending: a second of its CPU per poll):
    either way the bench measured its own load. The mails are looked up in the order they
    were delivered, a chunk at a time, stopping at the first chunk not yet all recorded (the
    pipeline works roughly in that order, so a poll reads one or two chunks); cases opened
    are read off the case counter (one document), and counted exactly once every mail is in.
    """

    CHUNK = 100

    def __init__(self, db: Any, message_ids: list[str], since: datetime) -> None:
        self.db = db
        self.pending = list(message_ids)
        self.recorded = 0
        self.since = since
        self.first_number: int | None = None

    async def read(self) -> tuple[int, int]:
        """Incoming mails recorded in cases (all of them, or at least this many), and cases
        opened, since the start."""
        if self.first_number is None:
            self.first_number = await self._numbers_taken()
        while self.pending:
            chunk = self.pending[: self.CHUNK]
            query = {"message_id": {"$in": chunk}, "direction": "in"}
            found = {
                d["message_id"] async for d in self.db["messages"].find(query, {"message_id": 1})
            }
            self.recorded += len(found)
            self.pending = [m for m in chunk if m not in found] + self.pending[self.CHUNK :]
            if len(found) < len(chunk):
                break
        if self.pending:
            return self.recorded, await self._numbers_taken() - self.first_number
        opened = await self.db["cases"].count_documents({"created_at": {"$gte": self.since}})
        return self.recorded, opened

    async def _numbers_taken(self) -> int:
        doc = await self.db["counters"].find_one({"_id": CASE_COUNTER})
        return int(doc["seq"]) if doc else 0


async def recorded_at(db: Any, since: datetime) -> tuple[dict[str, float], Counter[str]]:
    """Per Message-ID when its mail was recorded in a case; and new cases vs follow-ups."""
    times: dict[str, float] = {}
    kinds: Counter[str] = Counter()
    first_of: dict[int, str] = {}
    cursor = db["messages"].find(
        {"direction": "in", "created_at": {"$gte": since}},
        {"message_id": 1, "created_at": 1, "case_number": 1},
    )
    async for doc in cursor:
        times.setdefault(str(doc["message_id"]), doc["created_at"].timestamp())
        first_of.setdefault(int(doc["case_number"]), str(doc["message_id"]))
    opened = {
        int(doc["number"])
        async for doc in db["cases"].find({"created_at": {"$gte": since}}, {"number": 1})
    }
    kinds["new_case"] = len(opened)
    kinds["follow_up"] = len(times) - len(opened)
    return times, kinds


def counts_of(prefix: Path, pid: int) -> dict[str, Counter[str]]:
    """The counts a service process wrote last (empty before its first write)."""
    try:
        data = json.loads(Path(f"{prefix}.{pid}").read_text())
    except (OSError, ValueError):
        data = {}
    keys = ("commands", "micros", "writes", "publishes")
    return {k: Counter(data.get(k, {})) for k in keys}


STANDIN = "MongoDB stand-in"


@dataclass
class Snapshot:
    """CPU seconds and counts of every service at one moment."""

    cpu: dict[str, float]
    counts: dict[str, dict[str, Counter[str]]]


def snapshot(services: Services, prefix: Path, mongo: Mongo) -> Snapshot:
    """Read every service's CPU time and counts now (and the stand-in's CPU time)."""
    pids = {name: proc.pid for name, proc in services.procs.items()}
    cpu = {name: harness.cpu_seconds(pid) for name, pid in pids.items()}
    if mongo.pid is not None:
        cpu[STANDIN] = harness.cpu_seconds(mongo.pid)
    return Snapshot(cpu, {name: counts_of(prefix, pid) for name, pid in pids.items()})


def percentiles(seconds: list[float]) -> str:
    """p50/p95/p99 in milliseconds."""
    if not seconds:
        return "no samples"
    if len(seconds) == 1:
        return f"{seconds[0] * 1000:.0f} ms (one sample)"
    q = statistics.quantiles(seconds, n=100, method="inclusive")
    return f"p50 {q[49] * 1000:,.0f} ms, p95 {q[94] * 1000:,.0f} ms, p99 {q[98] * 1000:,.0f} ms"


async def settle(
    db: Any, sink: SmtpSink, mails: list[Mail], since: datetime, max_seconds: float
) -> bool:
    """Wait until every mail is in a case and every new case has its acknowledgement (or
    nothing changed for STALL_SECONDS, or ``max_seconds`` passed); whether it completed."""
    progress = Progress(db, [m.message_id for m in mails], since)
    last: tuple[int, int, int] = (-1, -1, -1)
    still = time.monotonic()
    deadline = still + max_seconds
    while True:
        recorded, opened = await progress.read()
        acked = len(list((sink.maildir / "new").iterdir()))
        if recorded >= len(mails) and acked >= opened:
            return True
        if (recorded, opened, acked) != last:
            last, still = (recorded, opened, acked), time.monotonic()
        elif time.monotonic() - still > STALL_SECONDS:
            print(f"stalled: {recorded} recorded, {opened} cases, {acked} acks", file=sys.stderr)
            return False
        if time.monotonic() > deadline:
            print(
                f"--max-seconds passed: {recorded} recorded, {opened} cases, {acked} acks",
                file=sys.stderr,
            )
            return False
        await asyncio.sleep(0.5)


@contextlib.contextmanager
def servers(base: Path, mongo_url: str | None) -> Iterator[tuple[Mongo, str, Dovecot, SmtpSink]]:
    """MongoDB, a RabbitMQ vhost, Dovecot and the sink for one run; all gone afterwards."""
    with contextlib.ExitStack() as stack:
        mongo = Mongo(base, url=mongo_url, cache="1G")
        mongo.start()
        stack.callback(mongo.stop)
        vhost = f"mailroom-e2e-{uuid.uuid4().hex[:8]}"
        broker = create_vhost(vhost)
        stack.callback(delete_vhost, vhost)
        dovecot = start_dovecot(base, {USER: PASSWORD})
        stack.callback(dovecot.stop)
        cert, key = make_cert(base / "tls")
        sink = start_smtp_sink(base, {USER: PASSWORD}, cert, key)
        stack.callback(sink.stop)
        yield mongo, broker, dovecot, sink


async def run(args: argparse.Namespace) -> None:
    base = harness.state_dir("mailroom-e2e-")
    if args.big_mb:
        mails = [make_big_mail(args.big_mb)]
    else:
        mails = make_mails(args.mails, args.replies, args.preload_cases, args.seed)
    size = sum(len(m.data) for m in mails)
    print(
        f"{len(mails)} mails, {size / len(mails) / 1024:.1f} KiB on average, "
        f"{sum(m.reply for m in mails)} replies to existing cases"
    )
    try:
        with servers(base, args.mongo_url) as (mongo, broker, dovecot, sink):
            if mongo.own:
                print("MongoDB: the local stand-in (retryWrites=false)")
            if args.preload_cases:
                seconds = await preload(mongo.url, args.preload_cases)
                print(f"preloaded {args.preload_cases:,} cases in {seconds:.1f} s")
            await _measure(args, base, mongo, broker, dovecot, sink, mails)
    finally:
        if args.keep:
            print(f"state and logs kept in {base}", file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)


async def _measure(
    args: argparse.Namespace,
    base: Path,
    mongo: Mongo,
    broker: str,
    dovecot: Dovecot,
    sink: SmtpSink,
    mails: list[Mail],
) -> None:
    prefix = base / "counts" / "service"
    prefix.parent.mkdir()
    env = {
        "MAILROOM_BROKER_URL": broker,
        "MAILROOM_MONGODB_URL": mongo.url,
        "MAILROOM_DATABASE": DATABASE,
        "MAILROOM_SECRET_KEY": SECRET,
        "MAILROOM_API_TOKEN": TOKEN,
        "MAILROOM_LOG_LEVEL": "WARNING",
        COUNTS_ENV: str(prefix),
    }
    services = Services(base, env, tag="e2e")
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo.url, tz_aware=True)
    db = client[DATABASE]
    try:
        for name in [ALL] if args.all_in_one else ["config", *SERVICES]:
            services.start(name)
        account = {
            "name": "bench",
            "protocol": "IMAP",
            "security": "none",
            "host": HOST,
            "port": dovecot.imap_port,
            "username": USER,
            "password": PASSWORD,
            "after_fetch": "delete",
        }
        await harness.configure(services.api_port, TOKEN, account=account, smtp_port=sink.port)
        await asyncio.sleep(3)  # every service has read the new configuration and idles
        idle = {n: harness.rss_mib(p.pid) for n, p in services.procs.items()}
        since = datetime.now(UTC)
        before = snapshot(services, prefix, mongo)
        delivered = await asyncio.to_thread(deliver, dovecot.imap_port, mails, args.rate)
        complete = await settle(db, sink, mails, since, args.max_seconds)
        await asyncio.sleep(1.2)  # the counts are written twice a second
        after = snapshot(services, prefix, mongo)
        peaks = {n: harness.peak_rss_mib(p.pid) for n, p in services.procs.items()}
        recorded, kinds = await recorded_at(db, since)
    finally:
        services.stop_all()
        await client.drop_database(DATABASE)
        await client.close()
    acks = sink_acks(sink)
    report(args, mails, delivered, recorded, kinds, acks, before, after, peaks, complete)
    if args.big_mb:
        size = len(mails[0].data) / 2**20
        print(f"  one mail of {size:.1f} MiB: peak RSS above the idle RSS, per service")
        for name, peak in peaks.items():
            above = peak - idle[name]
            times = above / size
            print(f"    {name:9} {idle[name]:4.0f} → {peak:4.0f} MiB: {times:4.2f} times its size")


def report(
    args: argparse.Namespace,
    mails: list[Mail],
    delivered: dict[str, float],
    recorded: dict[str, float],
    kinds: Counter[str],
    acks: dict[str, float],
    before: Snapshot,
    after: Snapshot,
    peaks: dict[str, float],
    complete: bool,
) -> None:
    """Print the figures."""
    n = len(mails)
    ours = {m.message_id for m in mails}
    acked = {k: v for k, v in acks.items() if k in ours}
    first = min(delivered.values())
    last = max([*(recorded[k] for k in ours if k in recorded), *acked.values()])
    seconds = last - first
    mode = "mailroom run all (one process)" if args.all_in_one else "4 service processes"
    done = sum(1 for k in ours if k in recorded)
    state = "" if complete else f" (INCOMPLETE: {done} of {n} in cases, see stderr)"
    print(
        f"end to end, {mode}: {done} mails in {seconds:.1f} s = {done / seconds:,.1f} mail/s"
        f"{state}; "
        f"{kinds['new_case']} new cases, {kinds['follow_up']} follow-ups, {len(acked)} acks"
    )
    to_case = [recorded[k] - delivered[k] for k in ours if k in recorded]
    to_ack = [acked[k] - delivered[k] for k in acked]
    print(f"  delivery → case: {percentiles(to_case)}")
    print(f"  delivery → ack:  {percentiles(to_ack)}")
    n = max(done, 1)  # per mail that went through: an incomplete run did less work
    total_commands = total_written = 0.0
    for name in after.counts:
        commands = after.counts[name]["commands"] - before.counts[name]["commands"]
        micros = after.counts[name]["micros"] - before.counts[name]["micros"]
        written = after.counts[name]["writes"] - before.counts[name]["writes"]
        publishes = after.counts[name]["publishes"] - before.counts[name]["publishes"]
        cpu = after.cpu[name] - before.cpu[name]
        total_commands += commands.total()
        total_written += written.total()
        print(
            f"  {name:9} MongoDB commands/mail {commands.total() / n:5.2f} "
            f"(write statements {written.total() / n:5.2f}), "
            f"publishes/mail {publishes.total() / n:4.2f}, CPU {cpu / n * 1000:6.2f} s "
            f"per 1,000 mails, peak RSS {peaks[name]:4.0f} MiB"
        )
        if args.verbose:
            by_name = ", ".join(
                f"{k} {v / n:.2f} ({micros[k] / v / 1000:.1f} ms each)"
                for k, v in commands.most_common()
            )
            print(f"            commands: {by_name}")
            print(f"            publishes: {', '.join(f'{k} {v}' for k, v in publishes.items())}")
    print(
        f"  MongoDB commands per mail, all services: {total_commands / n:.2f} "
        f"(write statements: {total_written / n:.2f})"
    )
    if STANDIN in after.cpu:
        # Near 1,000 / (mail/s) the stand-in's one core is what caps the run.
        cpu = after.cpu[STANDIN] - before.cpu[STANDIN]
        print(f"  MongoDB stand-in CPU {cpu / n * 1000:6.2f} s per 1,000 mails")
    print(f"  load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=0.0, help="APPENDs per second; 0: all")
    parser.add_argument("--replies", type=float, default=0.2, help="share of replies to cases")
    parser.add_argument("--preload-cases", type=int, default=0)
    parser.add_argument("--big-mb", type=float, default=0.0, help="instead: one mail this big")
    parser.add_argument("--all-in-one", action="store_true", help="mailroom run all")
    parser.add_argument("--mongo-url", help="a real MongoDB instead of the local stand-in")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="then report so far")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the state directory")
    parser.add_argument("-v", "--verbose", action="store_true", help="commands by name")
    args = parser.parse_args()
    # A TERM (timeout, CI) unwinds like Ctrl-C: the services and servers are stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
