"""How many mails per second the sender service sends, next to Postfix's ``smtp-source``.

The real path: N ``OutgoingMail`` messages are published to ``mail.outgoing`` on a private
RabbitMQ vhost, then the sender service (its own ``Stack``: the subscriber, the outbox
claims and outcome records in a MongoDB stand-in, the SMTP pool) is started and sends them
all to Postfix's ``smtp-sink``; the rate counts from the first outbox claim to the last
outcome recorded. Then, in the same run and against the same sink, ``smtp-source`` sends
as many mails of the same size over as many connections, and the ratio is printed. Both
run on ``--connections`` (default 1 and 4, one run each).

It prints, per connection count: mail/s of the sender and of smtp-source, the ratio, the
MongoDB commands per mail that the sender made (PyMongo command monitoring, by command),
and the CPU seconds of this process per 1,000 mails; and the load average before and after
(the machine is shared: figures from a loaded machine say little).

    .venv/bin/python bench/send.py [--mails 3000] [--body-bytes 3000] [--connections 1 4]
        [--transport-only]

``--transport-only`` measures the SMTP adapter alone (``compose`` + the pool, no broker, no
outbox), as this benchmark did before the real path existed. Postfix (Debian ``postfix``,
for ``smtp-sink`` and ``smtp-source``) is installed when missing, with "No configuration":
no system Postfix is configured or started. The sink accepts each mail without storing it:
the figures are the senders', not a disk's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from pymongo import monitoring

from deploy.local._proc import free_ports, listening, tool, wait_until
from deploy.local.postfix import _install as install_postfix
from deploy.local.servers import create_vhost, delete_vhost, start_mongodb
from services.sender.compose import compose
from services.sender.pool import AiosmtplibTransport
from services.sender.service import build as sender_service
from shared.broker import publish
from shared.config_views import OUTGOING_KEY, OUTGOING_MODULE
from shared.models.config import OutgoingConnection, SystemConfig
from shared.models.messages import OutgoingMail
from shared.runtime import Runtime
from shared.service import Stack
from shared.settings import SharedSettings
from shared.topology import MAIL_OUTGOING

FROM, TO = "bench@example.com", "carol@example.org"
# Commands of the waiting loop (``count``) and of the driver's own start-up, not the sender's.
NOT_THE_SENDERS = frozenset({"aggregate", "count", "hello", "ismaster", "isMaster", "ping"})


class _Commands(monitoring.CommandListener):
    """Counts MongoDB commands by name while ``on`` (every client in this process)."""

    def __init__(self) -> None:
        self.on = False
        self.counts: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.on and event.command_name not in NOT_THE_SENDERS:
            self.counts[event.command_name] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


COMMANDS = _Commands()
monitoring.register(COMMANDS)  # before any client exists: clients take the listeners then


def _mail(n: int, text: str, run: str) -> OutgoingMail:
    return OutgoingMail(
        mail_id=f"bench-{run}-{n}",
        kind="notification",
        automatic=True,
        to=[{"name": "Carol", "address": TO}],
        subject=f"Benchmark mail {n}",
        text=text,
    )


def _text(body_bytes: int) -> str:
    return ("Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n" * 200)[:body_bytes]


class _Figures(NamedTuple):
    rate: float
    cpu_per_1000: float
    commands: Counter[str]


async def _real_path(
    mongo_url: str, broker_url: str, port: int, connections: int, args: argparse.Namespace
) -> _Figures:
    """Publish, start the sender service, wait until every mail is sent."""
    run = uuid.uuid4().hex[:8]
    settings = SharedSettings(
        broker_url=broker_url,
        mongodb_url=mongo_url,
        database=f"bench_send_{run}",
        secret_key="bench-secret-key",
        instance_id=f"bench-send-{run}",
        log_level="WARNING",
    )
    # The feeder has its own connections. The service's start-up (configuration, indexes)
    # is counted with its commands: a few, spread over every mail.
    feeder = Runtime(settings)
    await feeder.start_store()
    await feeder.start_broker()
    value = {"host": "127.0.0.1", "port": port, "security": "none", "concurrency": connections}
    await feeder.store.properties.put(
        module=OUTGOING_MODULE, key=OUTGOING_KEY, value=value, who="bench"
    )
    text = _text(args.body_bytes)
    for n in range(args.mails):
        await publish(feeder.broker, _mail(n, text, run), routing_key=MAIL_OUTGOING)
    outbox = feeder.store.db["outbox"]
    stack = Stack([sender_service], settings)
    COMMANDS.counts.clear()
    COMMANDS.on = True
    cpu = time.process_time()
    try:
        await stack.start()
        while await outbox.count_documents({"status": "sent"}) < args.mails:  # noqa: ASYNC110 - progress is polled from MongoDB
            # Seldom: a count reads the collection, and the MongoDB server is the one measured.
            await asyncio.sleep(1.0)
        used = time.process_time() - cpu
        # From the first claim to the last outcome, by the sender's own clock: the service's
        # start-up and this loop's polling interval are not the sender's rate.
        first = await outbox.find_one({}, sort=[("created_at", 1)])
        last = await outbox.find_one({}, sort=[("sent_at", -1)])
        assert first is not None and last is not None
        elapsed = (last["sent_at"] - first["created_at"]).total_seconds()
        COMMANDS.on = False
        others = await outbox.count_documents({"status": {"$ne": "sent"}})
        if others:
            print(f"  warning: {others} outbox entries not sent")
    finally:
        COMMANDS.on = False
        await stack.stop()
        await feeder.store.db.client.drop_database(settings.database)
        await feeder.broker.stop()
        await feeder.close()
    return _Figures(args.mails / elapsed, used / args.mails * 1000, Counter(COMMANDS.counts))


async def _transport_only(port: int, connections: int, args: argparse.Namespace) -> _Figures:
    """``compose`` + the SMTP pool alone, with as many mails in flight as the prefetch."""
    conn = OutgoingConnection(host="127.0.0.1", port=port, security="none", concurrency=connections)
    transport = AiosmtplibTransport()
    config = SystemConfig()
    text = _text(args.body_bytes)
    numbers = iter(range(args.mails))

    async def worker() -> None:
        for n in numbers:
            await transport.send(compose(_mail(n, text, "t"), config), conn)

    cpu, started = time.process_time(), time.perf_counter()
    try:
        await asyncio.gather(*(worker() for _ in range(32)))
    finally:
        await transport.close()
    elapsed = time.perf_counter() - started
    used = time.process_time() - cpu
    return _Figures(args.mails / elapsed, used / args.mails * 1000, Counter())


def _smtp_source(port: int, connections: int, args: argparse.Namespace) -> float:
    """mail/s of Postfix's smtp-source: ``-d`` keeps each connection for many mails."""
    source = tool("smtp-source")
    assert source is not None
    command = [source, "-d", "-s", str(connections), "-m", str(args.mails)]
    command += ["-l", str(args.body_bytes), "-f", FROM, "-t", TO, "-M", "bench.localhost"]
    started = time.perf_counter()
    subprocess.run([*command, f"127.0.0.1:{port}"], check=True, capture_output=True)
    mails: int = args.mails
    return mails / (time.perf_counter() - started)


def _per_mail(commands: Counter[str], mails: int) -> str:
    total = sum(commands.values()) / mails
    detail = ", ".join(f"{name} {count / mails:.2f}" for name, count in commands.most_common())
    return f"{total:.2f} ({detail})" if commands else "0"


def main() -> None:
    """Parse arguments, start the servers, run each connection count, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mails", type=int, default=3000)
    parser.add_argument("--body-bytes", type=int, default=3000)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--transport-only", action="store_true")
    args = parser.parse_args()
    if tool("smtp-sink") is None or tool("smtp-source") is None:
        install_postfix()
    sink_bin = tool("smtp-sink")
    assert sink_bin is not None
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    state = Path(tempfile.mkdtemp(prefix="mailroom-bench-send-"))
    (port,) = free_ports(1)
    # As root smtp-sink must be told whom to run as.
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    sink = subprocess.Popen(
        [sink_bin, *user, f"127.0.0.1:{port}", "256"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    mongo = None if args.transport_only else start_mongodb(state)
    vhost = f"mailroom-bench-send-{uuid.uuid4().hex[:8]}"
    broker_url = None if args.transport_only else create_vhost(vhost)
    try:
        wait_until(lambda: listening(port), 10, "smtp-sink")
        for connections in args.connections:
            if mongo is None or broker_url is None:
                ours = asyncio.run(_transport_only(port, connections, args))
                path = "SMTP adapter alone"
            else:
                ours = asyncio.run(_real_path(mongo.url, broker_url, port, connections, args))
                path = "sender service (RabbitMQ + outbox + SMTP)"
            theirs = _smtp_source(port, connections, args)
            print(f"{connections} connection(s), {args.mails} mails of {args.body_bytes} bytes")
            print(f"  {path:45} {ours.rate:8.0f} mail/s")
            print(f"  {'smtp-source':45} {theirs:8.0f} mail/s")
            print(f"  ratio                                         {ours.rate / theirs:8.2f}")
            print(f"  MongoDB commands per mail  {_per_mail(ours.commands, args.mails)}")
            print(f"  CPU of this process        {ours.cpu_per_1000:.2f} s per 1,000 mails")
    finally:
        sink.terminate()
        sink.wait(10)
        if broker_url is not None:
            delete_vhost(vhost)
        if mongo is not None:
            mongo.stop()
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
