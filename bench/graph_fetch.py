"""Throughput of the Microsoft Graph mailbox adapter, against the local Graph stand-in.

    .venv/bin/python bench/graph_fetch.py [--mails 500] [--size 3072] [--disposal delete]

Fills a stand-in mailbox with N mails of about SIZE bytes, then drains it through the adapter
as the fetcher does (connect, delta listing, ``$value`` per mail, the disposal per mail,
the cursor) and prints mail/s and the CPU seconds per 1,000 mails. The stand-in and the
local OAuth issuer run in threads of this process (as in the tests), so the figure includes
the server's own work: it is a floor for the adapter, not Graph's speed (Graph allows 4
concurrent requests and 10,000 per 10 minutes per mailbox and app, ~16 requests/s).
Storing and announcing (MongoDB, RabbitMQ) are not included: ``bench/fetch.py`` measures them.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import get_args

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy.local.graph_standin import start_graph_standin  # noqa: E402
from deploy.local.oauth_issuer import start_oauth_issuer  # noqa: E402
from shared.mailbox.base import Disposal  # noqa: E402
from shared.mailbox.graph import open_graph_mailbox  # noqa: E402
from shared.models.config import IncomingAccount  # noqa: E402

UPN, APP, SECRET = "bench@contoso.test", "bench-app", "bench-secret-123"


def mail(n: int, size: int) -> bytes:
    """Mail number ``n`` of about ``size`` bytes, CRLF lines."""
    head = (
        f"From: Customer <customer@example.org>\r\nTo: {UPN}\r\nSubject: bench {n}\r\n"
        f"Message-ID: <bench-{n}@example.org>\r\n\r\n"
    ).encode()
    line = b"x" * 76 + b"\r\n"
    return head + line * max(1, (size - len(head)) // len(line))


async def drain(account: IncomingAccount, disposal: Disposal) -> int:
    """Take every mail from the mailbox as the fetcher would; how many."""
    mailbox = open_graph_mailbox(account, timeout=30, tokens=None)
    taken, cursor = 0, None
    try:
        while True:
            await mailbox.connect()
            listing = await mailbox.list_new(cursor)
            if not listing.refs:
                return taken
            done = {m.ref.source_key async for m in mailbox.fetch(listing.refs)}
            await mailbox.mark_done(listing.refs, disposal=disposal)
            taken += len(done)
            cursor = listing.cursor_after(done) or cursor
    finally:
        await mailbox.close()


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=500)
    parser.add_argument("--size", type=int, default=3072)
    parser.add_argument("--disposal", choices=get_args(Disposal), default="delete")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mailroom-graph-bench-") as tmp:
        state = Path(tmp)
        issuer = start_oauth_issuer(state)
        standin = start_graph_standin(state, issuer.introspect)
        try:
            issuer.add_client(APP, SECRET, UPN)
            standin.add_mailbox(UPN)
            for n in range(args.mails):
                standin.deliver(UPN, mail(n, args.size))
            account = IncomingAccount.model_validate(
                {
                    "name": "bench",
                    "protocol": "GRAPH",
                    "username": UPN,
                    "auth": "oauth2",
                    "client_id": APP,
                    "client_secret": SECRET,
                    "authority": issuer.authority(),
                    "oauth_ca_file": str(issuer.ca_file),
                    "graph_url": standin.url,
                    "ca_file": str(standin.ca_file),
                }
            )
            cpu0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            taken = asyncio.run(drain(account, args.disposal))
            wall = time.perf_counter() - wall0
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
            assert taken == args.mails, f"drained {taken} of {args.mails}"
            print(
                f"graph: {taken} mails of ~{args.size} B, disposal {args.disposal}: "
                f"{taken / wall:.0f} mail/s, {cpu / taken * 1000:.2f} CPU s per 1,000 mails "
                f"(adapter and stand-in together), {len(standin.requests)} requests"
            )
        finally:
            standin.stop()
            issuer.stop()


if __name__ == "__main__":
    main()
