"""Draining N mails from a private Cyrus through the JMAP adapter: mail/s.

    .venv/bin/python bench/jmap_fetch.py [--mails 2000] [--size 3072] [--batch 200]

Starts its own Cyrus (``deploy.local.cyrus``), delivers ``--mails`` mails of ``--size`` bytes
over LMTP, then drains them the way the fetcher does, without storage: ``list_new``, then in
batches of ``--batch`` ``fetch`` (one blob download each) and ``mark_done`` with disposal
delete, and the cursor. Prints the listing time, mail/s and MB/s of the drain, and the load
average (on a busy machine every figure grows with it). The bench checks that every mail came
and the folder ends empty.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy.local.cyrus import start_cyrus  # noqa: E402
from shared.mailbox.jmap import open_jmap_mailbox  # noqa: E402
from shared.models.config import IncomingAccount  # noqa: E402

USER, PASSWORD = "bench", "bench-password-1"


def mail(n: int, size: int) -> bytes:
    """A mail of about ``size`` bytes with Message-ID <bench{n}@bench>."""
    head = (
        f"From: customer{n}@example.org\r\nTo: helpdesk@example.org\r\n"
        f"Subject: bench mail {n}\r\nMessage-ID: <bench{n}@bench>\r\n\r\n"
    )
    line = "x" * 76 + "\r\n"
    return (head + line * max(1, (size - len(head)) // len(line))).encode()


async def drain(url: str, mails: int, batch: int) -> tuple[float, float, int]:
    """(listing seconds, drain seconds, bytes) for taking every mail."""
    account = IncomingAccount.model_validate(
        {
            "name": "bench",
            "protocol": "JMAP",
            "host": "127.0.0.1",
            "jmap_url": url,
            "username": USER,
            "password": PASSWORD,
        }
    )
    box = open_jmap_mailbox(account, timeout=120, tokens=None)
    started = time.perf_counter()
    await box.connect()
    listing = await box.list_new(None)
    listed = time.perf_counter() - started
    assert len(listing.refs) == mails, (len(listing.refs), mails)
    total, done = 0, set[str]()
    for first in range(0, len(listing.refs), batch):
        refs = listing.refs[first : first + batch]
        async for fetched in box.fetch(refs):
            total += len(fetched.data)
        await box.mark_done(refs, disposal="delete")
        done.update(r.source_key for r in refs)
    assert listing.cursor_after(done) is not None
    drained = time.perf_counter() - started
    assert (await box.list_new(listing.cursor_after(done))).refs == []
    status = await box.connect()
    assert status.exists == 0, status
    await box.close()
    return listed, drained, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--size", type=int, default=3 * 1024)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="bench-jmap-"))
    state.chmod(0o755)
    cyrus = start_cyrus(state, {USER: PASSWORD})
    try:
        loading = time.perf_counter()
        cyrus.deliver(USER, *(mail(n, args.size) for n in range(args.mails)))
        loaded = time.perf_counter() - loading
        print(f"delivered {args.mails} x {args.size} B over LMTP in {loaded:.1f} s")
        listed, drained, total = asyncio.run(drain(cyrus.base_url, args.mails, args.batch))
        print(f"listing (Email/query + Email/get): {listed:.2f} s")
        print(
            f"JMAP drain: {args.mails / drained:.0f} mail/s, "
            f"{total / drained / 1e6:.1f} MB/s ({drained:.1f} s, fetch + delete)"
        )
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        cyrus.stop()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
