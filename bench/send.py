"""How many mails per second the sender's SMTP path pushes over one connection.

Starts a local SMTP server in a separate process (so that server and client each get a
core): Postfix's ``smtp-sink`` (C, from the postfix package) when installed, else an aiosmtpd
server that accepts and forgets (Python: it caps the rate at about what it can answer, near
400 mail/s on a loaded 2-core machine). Then it builds every mail with the sender's
``compose`` and sends it through the sender's ``AiosmtplibTransport`` — one reused
connection, one mail at a time, as the sender service does — and prints the rate and
latency percentiles.

    .venv/bin/python bench/send.py [--mails 5000] [--body-bytes 3000] [--in-flight 1]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from aiosmtpd.smtp import SMTP, Envelope, Session

from deploy.local._proc import free_ports, listening, wait_until
from deploy.local.tls import make_cert
from services.sender.compose import compose
from services.sender.smtp import AiosmtplibTransport
from shared.models.config import OutgoingConnection, SystemConfig
from shared.models.messages import OutgoingMail


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


async def _send(
    count: int, body_bytes: int, conn: OutgoingConnection, in_flight: int
) -> list[float]:
    transport = AiosmtplibTransport()
    config = SystemConfig()
    text = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n" * 64)[:body_bytes]
    latencies: list[float] = []
    numbers = iter(range(count))

    async def worker() -> None:
        # Workers share the transport, so the mails still go over its one connection, one
        # transaction at a time; what overlaps is building a mail while another is on the wire.
        for n in numbers:
            mail = OutgoingMail(
                mail_id=f"bench-{n}",
                kind="reply",
                automatic=False,
                case_number=10000 + n,
                to=[{"name": "Carol", "address": "carol@example.org"}],
                subject=f"Benchmark mail {n}",
                text=text,
            )
            started = time.perf_counter()
            await transport.send(compose(mail, config), conn)
            latencies.append(time.perf_counter() - started)

    try:
        await asyncio.gather(*(worker() for _ in range(in_flight)))
    finally:
        await transport.close()
    return latencies


def main() -> None:
    """Parse arguments, run the server process and the client, print the figures."""
    # The client's mails and the server's answers are both Python: one core each.
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=5000)
    parser.add_argument("--body-bytes", type=int, default=3000)
    parser.add_argument("--security", choices=("none", "starttls"), default="none")
    sink = shutil.which("smtp-sink", path="/usr/sbin:/usr/local/sbin:/usr/bin")
    parser.add_argument(
        "--server", choices=("smtp-sink", "aiosmtpd"), default="smtp-sink" if sink else "aiosmtpd"
    )
    parser.add_argument(
        "--in-flight",
        type=int,
        default=1,
        help="mails being built/sent at once (1: strictly serial)",
    )
    args = parser.parse_args()

    if args.server == "smtp-sink":
        if sink is None or args.security != "none":
            parser.error("smtp-sink needs the postfix package and --security none")
        _run_smtp_sink(sink, args)
        return
    cert = key = None
    if args.security == "starttls":
        cert_path, key_path = make_cert(Path(tempfile.mkdtemp(prefix="mailroom-bench-")))
        cert, key = str(cert_path), str(key_path)
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(theirs, cert, key), daemon=True)
    server.start()
    port = ours.recv()
    conn = OutgoingConnection(
        host="127.0.0.1", port=port, security=args.security, ca_file=cert, send_timeout_ms=30_000
    )
    asyncio.run(_send(min(200, args.mails), args.body_bytes, conn, args.in_flight))  # warm up
    started = time.perf_counter()
    latencies = asyncio.run(_send(args.mails, args.body_bytes, conn, args.in_flight))
    elapsed = time.perf_counter() - started
    ours.send("done")
    accepted = ours.recv()
    server.join(10)

    _report(args, latencies, elapsed, f"aiosmtpd, accepted {accepted} incl. warm-up")


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
        conn = OutgoingConnection(
            host="127.0.0.1", port=port, security="none", send_timeout_ms=30_000
        )
        asyncio.run(_send(min(200, args.mails), args.body_bytes, conn, args.in_flight))
        started = time.perf_counter()
        latencies = asyncio.run(_send(args.mails, args.body_bytes, conn, args.in_flight))
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(10)
    _report(args, latencies, elapsed, "Postfix smtp-sink")


def _report(args: argparse.Namespace, latencies: list[float], elapsed: float, server: str) -> None:
    ms = sorted(x * 1000 for x in latencies)
    print(f"mails sent        {len(latencies)}")
    print(
        f"setup             {server}; security {args.security}, one connection, "
        f"{args.in_flight} in flight, body {args.body_bytes} bytes"
    )
    print(f"elapsed           {elapsed:.2f} s")
    print(f"rate              {len(latencies) / elapsed:.0f} mail/s")
    print(
        f"latency ms        p50 {statistics.median(ms):.2f}  "
        f"p99 {ms[int(len(ms) * 0.99) - 1]:.2f}  max {ms[-1]:.2f}"
    )


if __name__ == "__main__":
    main()
