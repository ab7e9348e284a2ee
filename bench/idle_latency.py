"""IDLE push latency: from IMAP APPEND to ``mail.received`` on RabbitMQ, with the fetcher idling.

    .venv/bin/python bench/idle_latency.py [--mails 50] [--gap-ms 200]
                                           [--mongo-url mongodb://host:27017/]

Starts a private Dovecot, MongoDB (the local stand-in unless ``--mongo-url`` or
``MONGODB_URL``) and RabbitMQ vhost, runs the fetcher's supervisor for one IMAP account with a
poll interval of 300 s (so only IDLE can bring mail in quickly), then, one mail at a time,
APPENDs a mail over a held IMAP connection and waits for its ``mail.received`` on the
processor's queue. Latency is from just before the APPEND to the message's arrival: it covers
Dovecot's delivery, the IDLE push, the fetch round (UID SEARCH, FETCH, MongoDB insert, publish
with confirm, status update) and the broker. Between mails it waits ``--gap-ms`` with jitter,
so some mails arrive while the previous round is still finishing. Prints p50, p95 and max,
and splits each latency at the moment the server's ``* n EXISTS`` arrived (taken from the
account's protocol trace): the server's share before it, the fetcher's after it.
"""

from __future__ import annotations

import argparse
import asyncio
import imaplib
import logging
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aio_pika

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy.local.servers import (  # noqa: E402
    create_vhost,
    delete_vhost,
    start_dovecot,
    start_mongodb,
)
from services.fetcher.deps import FetcherDeps  # noqa: E402
from services.fetcher.supervisor import Supervisor  # noqa: E402
from shared.models.config import GlobalSettings, IncomingAccount  # noqa: E402
from shared.models.messages import MailReceived  # noqa: E402
from shared.runtime import Runtime  # noqa: E402
from shared.settings import SharedSettings  # noqa: E402
from shared.topology import PROCESSOR_INBOUND  # noqa: E402

USER, PASSWORD = "idle", "idlepw"
POLL_SECONDS = 300.0
WAIT_SECONDS = 60.0


class PushClock(logging.Handler):
    """Notes when the protocol trace shows the server announcing new mail."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if text.startswith("S * ") and text.endswith(" EXISTS"):
            self.times.append(time.perf_counter())


def mail(n: int) -> bytes:
    """A small mail with a unique Message-ID."""
    return (
        f"From: Customer <c{n}@example.org>\r\nTo: support@example.com\r\n"
        f"Subject: IDLE latency {n}\r\nMessage-ID: <idle-{n}-{uuid.uuid4().hex}@example.org>\r\n"
        "Content-Type: text/plain\r\n\r\nPlease help.\r\n"
    ).encode()


async def measure(
    broker: str, mongo: str, port: int, mails: int, gap_ms: float
) -> list[tuple[float, float]]:
    """Per mail: seconds from APPEND to ``mail.received``, and from APPEND to the push."""
    rt = Runtime(
        SharedSettings(
            broker_url=broker,
            mongodb_url=mongo,
            database=f"idle_{uuid.uuid4().hex[:8]}",
            secret_key="bench-secret-key-0123456789",
            instance_id="idle-bench",
            log_json=False,
        )
    )
    await rt.start_store()
    await rt.start_broker()
    account = IncomingAccount(
        name="idle-bench",
        protocol="IMAP",
        security="none",
        host="127.0.0.1",
        port=port,
        username=USER,
        password=PASSWORD,
        debug="yes",
    )
    rt.config = rt.config.model_copy(
        update={
            "accounts": {account.name: account},
            "settings": GlobalSettings(poll_interval_seconds=POLL_SECONDS),
        }
    )
    connection = await aio_pika.connect(broker)
    imap = imaplib.IMAP4("127.0.0.1", port, timeout=60)
    imap.login(USER, PASSWORD)
    supervisor = Supervisor(FetcherDeps.of(rt))
    clock = PushClock()
    logging.getLogger(f"mailroom.trace.{account.name}").addHandler(clock)
    latencies: list[tuple[float, float]] = []
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(PROCESSOR_INBOUND.name, passive=True)
        await queue.purge()
        await supervisor.start()
        async with queue.iterator() as messages:
            for n in range(mails):
                await asyncio.sleep(gap_ms / 1000 * random.uniform(0.5, 1.5))
                started = time.perf_counter()
                await asyncio.to_thread(imap.append, "INBOX", None, None, mail(n))
                message = await asyncio.wait_for(anext(messages), WAIT_SECONDS)
                done = time.perf_counter()
                pushed = next((t for t in clock.times if started < t <= done), done)
                latencies.append((done - started, pushed - started))
                await message.ack()
                MailReceived.model_validate_json(message.body)
    finally:
        await supervisor.stop()
        imap.logout()
        await connection.close()
        await rt.store.db.client.drop_database(rt.settings.database)
        await rt.broker.stop()
        await rt.close()
    return latencies


def summary(seconds: list[float]) -> str:
    """p50, p95 and max in milliseconds."""
    ms = sorted(s * 1000 for s in seconds)
    p95 = statistics.quantiles(ms, n=100, method="inclusive")[94] if len(ms) > 1 else ms[0]
    return f"p50 {statistics.median(ms):.0f} ms, p95 {p95:.0f} ms, max {ms[-1]:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=50)
    parser.add_argument("--gap-ms", type=float, default=200.0)
    parser.add_argument("--mongo-url", help="a real MongoDB instead of the local stand-in")
    args = parser.parse_args()
    if args.mongo_url:
        os.environ["MONGODB_URL"] = args.mongo_url  # start_mongodb then uses it

    state = Path(tempfile.mkdtemp(prefix="mailroom-idle-"))
    state.chmod(0o755)
    vhost = f"mailroom-idle-{uuid.uuid4().hex[:8]}"
    dovecot = start_dovecot(state, {USER: PASSWORD})
    mongo = start_mongodb(state)
    try:
        broker = create_vhost(vhost)
        figures = asyncio.run(
            measure(broker, mongo.url, dovecot.imap_port, args.mails, args.gap_ms)
        )
        print(
            f"IDLE latency APPEND → mail.received over {len(figures)} mails (poll interval "
            f"{POLL_SECONDS:g} s): {summary([total for total, _ in figures])}"
        )
        print(f"  of it, until the server's EXISTS push: {summary([p for _, p in figures])}")
        print(f"  of it, push → mail.received: {summary([t - p for t, p in figures])}")
    finally:
        delete_vhost(vhost)
        mongo.stop()
        dovecot.stop()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
