"""Fault injection: an operator's bad day, on servers of its own, ending in one line.

    .venv/bin/python bench/chaos.py --mails 300 --faults 7
    chaos: mails=N cases=C lost=L duplicate_cases=D duplicate_replies=R desk=F possibly_sent=P
           faults=K   (one line)

It starts, under one temporary directory: its own RabbitMQ node (Debian's server with its own
config file, node name, directories owned by the ``rabbitmq`` user and a free AMQP and
distribution port — the machine's node on 5672 is never touched), a file-backed MongoDB
stand-in it can stop, kill and start again on the same port, Dovecot, and the SMTP sink behind
a gate it can close. The four services run as separate processes (``faststream run``),
configured over the config API. It delivers N mails to the mailbox, injects K faults at random
moments while they flow (kill -9 of the fetcher, processor or sender, then a restart; the
broker stopped; MongoDB stopped or killed; SMTP away), waits until nothing changes, and
counts:

- ``cases``: cases opened; ``lost``: mails without a case; ``duplicate_cases``: mails in more
  than one case; ``duplicate_replies``: acknowledgements the sink received more than once;
  ``desk``: mails on the failed-mail desk for any other reason than ``possibly_sent`` (an
  outage must put none there); ``possibly_sent``: mails whose SMTP transaction a kill -9 of the
  sender cut off, or whose server went away after taking the whole mail and before answering,
  which the sender hands to an operator instead of sending twice (at most one per SMTP
  connection and sender kill or SMTP cut; see ``services/sender/deliver.py``).

``--outage`` sets how long the broker, MongoDB and SMTP stay away (default 20 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import shutil
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402
from bench.harness import SERVICES, Mongo, RabbitNode, Services  # noqa: E402
from deploy.local._proc import HOST  # noqa: E402
from deploy.local.dovecot import Dovecot, start_dovecot  # noqa: E402
from deploy.local.servers import SmtpSink, make_cert, start_smtp_sink  # noqa: E402
from tests.outage import Gate  # noqa: E402
from tests.support import make_mail  # noqa: E402

TOKEN = "chaos-api-token-0123456789"
SECRET = "chaos-secret-key-0123456789"
USERS = {"bob": "bobpw", "alice": "alicepw"}


async def configure(services: Services, dovecot: Dovecot, smtp_port: int) -> None:
    """Settings, the outgoing SMTP server (through the gate) and the mailbox, over the API."""
    account = {
        "name": "chaos",
        "protocol": "IMAP",
        "security": "none",
        "host": HOST,
        "port": dovecot.imap_port,
        "username": "bob",
        "password": USERS["bob"],
        "after_fetch": "delete",
    }
    await harness.configure(services.api_port, TOKEN, account=account, smtp_port=smtp_port)


Fault = Callable[[], Coroutine[Any, Any, str]]


def faults(
    services: Services, rabbit: RabbitNode, mongo: Mongo, gate: Gate, outage: float
) -> list[Fault]:
    """One coroutine per kind of fault; each returns its name when the system is whole again."""

    def kill(name: str) -> Fault:
        async def run() -> str:
            services.kill(name)
            await asyncio.sleep(1.0)
            services.start(name)
            return f"kill -9 {name}"

        return run

    async def broker() -> str:
        await asyncio.to_thread(rabbit.ctl, "stop_app")
        await asyncio.sleep(outage)
        await asyncio.to_thread(rabbit.ctl, "start_app")
        return f"broker stopped {outage:g} s"

    def mongodb(sig: int, how: str) -> Fault:
        async def run() -> str:
            await asyncio.to_thread(mongo.stop, sig)
            await asyncio.sleep(outage)
            await asyncio.to_thread(mongo.start)
            return f"MongoDB {how} {outage:g} s"

        return run

    async def smtp() -> str:
        await gate.cut()
        await asyncio.sleep(outage)
        await gate.restore()
        return f"SMTP away {outage:g} s"

    return [
        *(kill(name) for name in SERVICES),
        broker,
        mongodb(signal.SIGTERM, "stopped"),
        mongodb(signal.SIGKILL, "killed"),
        smtp,
    ]


async def count(mongo: Mongo, database: str, ids: set[str], sink: SmtpSink) -> dict[str, int]:
    """The run's figures from MongoDB and the sink."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo.url, serverSelectionTimeoutMS=5000
    )
    try:
        db = client[database]
        cases_of: dict[str, set[int]] = {}
        async for doc in db["messages"].find(
            {"direction": "in"}, {"message_id": 1, "case_number": 1}
        ):
            cases_of.setdefault(str(doc.get("message_id")), set()).add(int(doc["case_number"]))
        cases = await db["cases"].count_documents({})
        desk = await db["failed_mails"].count_documents({"status": "failed"})
        possibly_sent = await db["failed_mails"].count_documents(
            {"status": "failed", "error": {"$regex": "possibly sent"}}
        )
    finally:
        await client.close()
    replies = Counter(str(m["Message-ID"]) for m in sink.messages())
    return {
        "cases": cases,
        "lost": sum(1 for i in ids if i not in cases_of),
        "duplicate_cases": sum(1 for i in ids if len(cases_of.get(i, ())) > 1),
        "duplicate_replies": sum(n - 1 for n in replies.values() if n > 1),
        "replies": len(replies),
        "desk": desk - possibly_sent,
        "possibly_sent": possibly_sent,
    }


async def desk_reasons(mongo: Mongo, database: str) -> Counter[str]:
    """The failed-mail desk's reasons and how many mails each: a failed run says why."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo.url, serverSelectionTimeoutMS=5000
    )
    try:
        docs = client[database]["failed_mails"].find({"status": "failed"}, {"error": 1})
        return Counter([str(doc.get("error")) async for doc in docs])
    finally:
        await client.close()


async def run(mails: int, fault_count: int, outage: float, seed: int, keep: bool) -> str:
    rng = random.Random(seed)
    base = await asyncio.to_thread(harness.state_dir, "mailroom-chaos-")
    rabbit, mongo = RabbitNode(base), Mongo(base)
    database = "chaos"
    with contextlib.ExitStack() as servers:
        rabbit.start()
        servers.callback(rabbit.stop)
        mongo.start()
        servers.callback(mongo.stop)
        dovecot = start_dovecot(base, USERS)
        servers.callback(dovecot.stop)
        cert, key = make_cert(base / "tls")
        sink = start_smtp_sink(base, USERS, cert, key)
        servers.callback(sink.stop)
        gate = Gate(HOST, sink.port)
        await gate.restore()
        try:
            figures, injected = await _pipeline(
                base, rng, mails, fault_count, outage, database, rabbit, mongo, dovecot, sink, gate
            )
        finally:
            await gate.cut()
            if keep:
                print(f"state and logs kept in {base}", file=sys.stderr)
    if not keep:
        shutil.rmtree(base, ignore_errors=True)
    return (
        f"chaos: mails={mails} cases={figures['cases']} lost={figures['lost']} "
        f"duplicate_cases={figures['duplicate_cases']} "
        f"duplicate_replies={figures['duplicate_replies']} desk={figures['desk']} "
        f"possibly_sent={figures['possibly_sent']} faults={len(injected)}"
    )


async def _pipeline(
    base: Path,
    rng: random.Random,
    mails: int,
    fault_count: int,
    outage: float,
    database: str,
    rabbit: RabbitNode,
    mongo: Mongo,
    dovecot: Dovecot,
    sink: SmtpSink,
    gate: Gate,
) -> tuple[dict[str, int], list[str]]:
    """Run the services, load the mail, inject the faults, settle: the figures."""
    env = {
        "MAILROOM_BROKER_URL": rabbit.url,
        "MAILROOM_MONGODB_URL": mongo.url,
        "MAILROOM_DATABASE": database,
        "MAILROOM_SECRET_KEY": SECRET,
        "MAILROOM_API_TOKEN": TOKEN,
        "MAILROOM_LOG_LEVEL": "WARNING",
    }
    services = Services(base, env)
    try:
        for name in ("config", *SERVICES):
            services.start(name)
        await configure(services, dovecot, gate.port)
        ids: set[str] = set()
        kinds = faults(services, rabbit, mongo, gate, outage)
        chosen = [kinds[i % len(kinds)] for i in range(fault_count)]
        rng.shuffle(chosen)
        injected: list[str] = []

        async def inject() -> None:
            for fault in chosen:
                await asyncio.sleep(rng.uniform(1.0, 8.0))
                injected.append(await fault())

        injecting = asyncio.create_task(inject())
        for i in range(mails):
            message_id = make_msgid(domain="chaos.example.org")
            data, _ = make_mail(
                subject=f"Chaos {i}", sender=f"customer{i}@example.org", message_id=message_id
            )
            await asyncio.to_thread(dovecot.deliver, "bob", data)
            ids.add(message_id)
            if i % 50 == 49:
                await asyncio.sleep(0.5)  # mail keeps arriving while the faults happen
        await injecting
        figures = await settle(mongo, database, ids, sink, mails)
        print("faults: " + "; ".join(injected), file=sys.stderr)
        for reason, n in (await desk_reasons(mongo, database)).most_common():
            print(f"desk: {n} x {reason}", file=sys.stderr)
        return figures, injected
    finally:
        services.stop_all()


async def settle(
    mongo: Mongo, database: str, ids: set[str], sink: SmtpSink, mails: int
) -> dict[str, int]:
    """Wait until every mail has its case and its acknowledgement, or nothing has changed
    for two minutes; the figures then."""
    last: dict[str, int] = {}
    still = time.monotonic()
    while True:
        figures = await count(mongo, database, ids, sink)
        if figures["lost"] == 0 and figures["replies"] >= mails:
            await asyncio.sleep(5)  # late duplicates would show now
            return await count(mongo, database, ids, sink)
        if figures != last:
            last, still = figures, time.monotonic()
        elif time.monotonic() - still > 120:
            return figures
        await asyncio.sleep(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=300)
    parser.add_argument("--faults", type=int, default=7)
    parser.add_argument("--outage", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the state directory")
    args = parser.parse_args()
    print(asyncio.run(run(args.mails, args.faults, args.outage, args.seed, args.keep)))


if __name__ == "__main__":
    main()
