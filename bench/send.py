"""How many mails per second the sender's SMTP path pushes over its connections.

Starts a local SMTP server in a separate process (so that server and client each get a
core): Postfix's ``smtp-sink`` (C, from the postfix package) when installed, else an aiosmtpd
server that accepts and forgets (Python: one core answers at most a few hundred mails per
second; ``--server-only`` measures it alone, with a client that only writes raw SMTP). Then
it builds every mail with the sender's ``compose`` and sends it through the sender's
``AiosmtplibTransport`` with ``--concurrency`` connections (default one) and as many mails in
flight as the sender's consumer holds, as the sender service does. It prints the rate,
latency percentiles (from building a mail to the server's reply, waiting for a free
connection included) and the CPU seconds the sending process spent per 1,000 mails (less
noisy than the rate on a shared machine).

    .venv/bin/python bench/send.py [--mails 5000] [--body-bytes 3000] [--concurrency 1]
        [--in-flight 32] [--server-only]
        [--server smtp-sink|aiosmtpd] [--security none|starttls (aiosmtpd only)]

The server accepts each mail without storing it: the figure is the sender's, not a disk's.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from aiosmtpd.smtp import SMTP, Envelope, Session

from deploy.local._proc import free_ports, listening, wait_until
from deploy.local.tls import make_cert
from services.sender.compose import compose, wire_bytes
from services.sender.pool import AiosmtplibTransport
from shared.models.config import OutgoingConnection, SystemConfig
from shared.models.messages import OutgoingMail
from shared.topology import SENDER_CHANNEL


class _Counter:
    """aiosmtpd handler: accept, count, forget."""

    def __init__(self) -> None:
        self.accepted = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.accepted += 1
        return "250 OK"


def _serve(pipe: Connection, cert: str | None, key: str | None) -> None:
    """The server process: report the port, serve until told to stop, report the count."""

    async def main() -> None:
        tls = None
        if cert and key:
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(cert, key)
        handler = _Counter()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(handler, hostname="bench.localhost", tls_context=tls),
            "127.0.0.1",
            0,
        )
        pipe.send(server.sockets[0].getsockname()[1])
        await loop.run_in_executor(None, pipe.recv)  # blocks until the client is done
        pipe.send(handler.accepted)
        server.close()

    asyncio.run(main())


def _mail(n: int, text: str) -> OutgoingMail:
    return OutgoingMail(
        mail_id=f"bench-{n}",
        kind="reply",
        automatic=False,
        case_number=10000 + n,
        to=[{"name": "Carol", "address": "carol@example.org"}],
        subject=f"Benchmark mail {n}",
        text=text,
    )


def _text(body_bytes: int) -> str:
    return ("Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n" * 64)[:body_bytes]


async def _send(
    count: int, body_bytes: int, conn: OutgoingConnection, in_flight: int
) -> list[float]:
    transport = AiosmtplibTransport()
    config = SystemConfig()
    text = _text(body_bytes)
    latencies: list[float] = []
    numbers = iter(range(count))

    async def worker() -> None:
        # As the sender's consumer: one task per unacknowledged message; while one mail is on
        # the wire the next ones are built, and they wait for a free connection.
        for n in numbers:
            started = time.perf_counter()
            await transport.send(compose(_mail(n, text), config), conn)
            latencies.append(time.perf_counter() - started)

    try:
        await asyncio.gather(*(worker() for _ in range(in_flight)))
    finally:
        await transport.close()
    return latencies


async def _raw_client(port: int, count: int, body_bytes: int) -> list[float]:
    """The cheapest possible client: prebuilt bytes, one command and one reply at a time."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()
    writer.write(b"EHLO bench.localhost\r\n")
    while not (await reader.readline()).startswith(b"250 "):
        pass
    data = wire_bytes(compose(_mail(0, _text(body_bytes)), SystemConfig())) + b".\r\n"
    commands = [b"MAIL FROM:<a@example.com>\r\n", b"RCPT TO:<b@example.org>\r\n", b"DATA\r\n"]
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        for line in (*commands, data):
            writer.write(line)
            await reader.readline()
        latencies.append(time.perf_counter() - started)
    writer.write(b"QUIT\r\n")
    writer.close()
    return latencies


class _Run(NamedTuple):
    latencies: list[float]
    elapsed: float
    cpu: float


def _measure(args: argparse.Namespace, conn: OutgoingConnection) -> _Run:
    if args.server_only:
        asyncio.run(_raw_client(conn.effective_port, min(200, args.mails), args.body_bytes))
    else:
        asyncio.run(_send(min(200, args.mails), args.body_bytes, conn, args.in_flight))  # warm up
    cpu, started = time.process_time(), time.perf_counter()
    if args.server_only:
        latencies = asyncio.run(_raw_client(conn.effective_port, args.mails, args.body_bytes))
    else:
        latencies = asyncio.run(_send(args.mails, args.body_bytes, conn, args.in_flight))
    return _Run(latencies, time.perf_counter() - started, time.process_time() - cpu)


def main() -> None:
    """Parse arguments, run the server process and the client, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=5000)
    parser.add_argument("--body-bytes", type=int, default=3000)
    parser.add_argument("--security", choices=("none", "starttls"), default="none")
    sink = shutil.which("smtp-sink", path="/usr/sbin:/usr/local/sbin:/usr/bin")
    parser.add_argument(
        "--server", choices=("smtp-sink", "aiosmtpd"), default="smtp-sink" if sink else "aiosmtpd"
    )
    parser.add_argument("--concurrency", type=int, default=1, help="SMTP connections in parallel")
    parser.add_argument(
        "--in-flight",
        type=int,
        default=SENDER_CHANNEL.prefetch_count or 1,
        help="mails being handled at once (default: the sender's prefetch; 1: strictly serial)",
    )
    parser.add_argument(
        "--server-only",
        action="store_true",
        help="a raw-socket client instead of the sender: what the server alone can take",
    )
    args = parser.parse_args()

    if args.server == "smtp-sink":
        if sink is None or args.security != "none":
            parser.error("smtp-sink needs the postfix package and --security none")
        _run_smtp_sink(sink, args)
        return
    if args.server_only and args.security != "none":
        parser.error("--server-only speaks plain SMTP")
    cert = key = None
    if args.security == "starttls":
        cert_path, key_path = make_cert(Path(tempfile.mkdtemp(prefix="mailroom-bench-")))
        cert, key = str(cert_path), str(key_path)
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(theirs, cert, key), daemon=True)
    server.start()
    port = ours.recv()
    run = _measure(args, _connection(args, port, cert))
    ours.send("done")
    accepted = ours.recv()
    server.join(10)
    _report(args, run, f"aiosmtpd, accepted {accepted} incl. warm-up")


def _connection(args: argparse.Namespace, port: int, ca_file: str | None) -> OutgoingConnection:
    return OutgoingConnection(
        host="127.0.0.1",
        port=port,
        security=args.security,
        ca_file=ca_file,
        send_timeout_ms=30_000,
        concurrency=args.concurrency,
    )


def _run_smtp_sink(sink: str, args: argparse.Namespace) -> None:
    (port,) = free_ports(1)
    # As root smtp-sink must be told whom to run as.
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    server = subprocess.Popen(
        [sink, *user, f"127.0.0.1:{port}", "256"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: listening(port), 10, "smtp-sink")
        run = _measure(args, _connection(args, port, None))
    finally:
        server.terminate()
        server.wait(10)
    _report(args, run, "Postfix smtp-sink")


def _report(args: argparse.Namespace, run: _Run, server: str) -> None:
    ms = sorted(x * 1000 for x in run.latencies)
    client = "raw-socket client (server alone)" if args.server_only else "the sender's path"
    print(f"mails sent        {len(ms)}")
    print(
        f"setup             {server}; {client}; security {args.security}, "
        f"{args.concurrency} connection(s), {args.in_flight} in flight, "
        f"body {args.body_bytes} bytes"
    )
    print(f"elapsed           {run.elapsed:.2f} s")
    print(f"rate              {len(ms) / run.elapsed:.0f} mail/s")
    print(f"client CPU        {run.cpu / len(ms) * 1000:.2f} s per 1,000 mails")
    print(
        f"latency ms        p50 {statistics.median(ms):.2f}  "
        f"p99 {ms[int(len(ms) * 0.99) - 1]:.2f}  max {ms[-1]:.2f}"
    )


if __name__ == "__main__":
    main()
