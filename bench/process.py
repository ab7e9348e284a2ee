"""Throughput of the processor on a mixed corpus, on real RabbitMQ and MongoDB.

    .venv/bin/python bench/process.py [--mails 2000]

Stores N raw mails (a mix of new mails, subject-pattern replies, In-Reply-To replies,
auto-replies, bounces, multipart mail with attachments, and the corpus under
tests/data/mail/ when present), publishes one ``mail.received`` per mail, runs one processor
(the real subscriber, publisher confirms and all) and prints mails/s, the processing time
of one mail (p50/p95/p99) and the peak RSS. Starts its own MongoDB stand-in and a
private RabbitMQ vhost, and removes both afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import services.processor.handlers as handlers  # noqa: E402
from deploy.local.servers import create_vhost, delete_vhost, start_mongodb  # noqa: E402
from services.processor.deps import ProcessorDeps  # noqa: E402
from services.processor.process import Outcome, process_mail  # noqa: E402
from services.processor.service import build as processor_service  # noqa: E402
from services.processor.settings import INLINE_PARSE_BYTES  # noqa: E402
from shared.broker import publish  # noqa: E402
from shared.models.messages import MailReceived  # noqa: E402
from shared.models.records import RawEmail  # noqa: E402
from shared.runtime import Runtime  # noqa: E402
from shared.service import Stack  # noqa: E402
from shared.settings import SharedSettings  # noqa: E402
from shared.topology import MAIL_RECEIVED  # noqa: E402
from tests.round_trips import counting  # noqa: E402
from tests.support import make_mail  # noqa: E402

TIMINGS: list[float] = []


async def timed_process_mail(
    deps: ProcessorDeps,
    msg: MailReceived,
    *,
    alone: bool = False,
    inline_parse_bytes: int = INLINE_PARSE_BYTES,
) -> Outcome:
    """The real process_mail, timed."""
    begin = time.perf_counter()
    try:
        return await process_mail(deps, msg, alone=alone, inline_parse_bytes=inline_parse_bytes)
    finally:
        TIMINGS.append(time.perf_counter() - begin)


def mixed_mail(i: int) -> bytes:
    """Mail number ``i`` of the mix: every kind of mail the processor decides on."""
    kind = i % 6
    if kind == 1:
        return make_mail(
            subject=f"Re: Printer [Case#{10001 + i // 6}]", sender=f"c{i % 50}@example.org"
        )[0]
    if kind == 2:
        return make_mail(
            subject="thanks",
            in_reply_to=f"<m{i - 2}@bench.example.org>",
            sender=f"c{i % 50}@example.org",
        )[0]
    if kind == 3:
        return b"Auto-Submitted: auto-replied\r\n" + make_mail(subject="Out of office")[0]
    if kind == 4:
        body = "line of text for a longer body\n" * 200
        return make_mail(subject=f"Report {i}", body=body, sender=f"r{i % 30}@example.org")[0]
    return make_mail(
        subject=f"New request {i}",
        sender=f"c{i % 50}@example.org",
        message_id=f"<m{i}@bench.example.org>",
    )[0]


def corpus() -> list[bytes]:
    """The test corpus, if it exists."""
    folder = ROOT / "tests" / "data" / "mail"
    return [p.read_bytes() for p in sorted(folder.rglob("*.eml"))]


async def run(count: int) -> None:
    """Store, announce and process ``count`` mails; print the figures."""
    state = Path(tempfile.mkdtemp(prefix="mailroom-bench-"))
    mongo = start_mongodb(state)
    vhost = f"mailroom-bench-{uuid.uuid4().hex[:8]}"
    settings = SharedSettings(
        broker_url=create_vhost(vhost),
        mongodb_url=mongo.url,
        database="bench",
        secret_key="bench-secret-key",
        instance_id="bench",
        log_level="WARNING",
    )
    extra = corpus()
    mails = [
        extra[i % len(extra)] if extra and i % 10 == 9 else mixed_mail(i) for i in range(count)
    ]
    handlers.process_mail = timed_process_mail  # type: ignore[attr-defined]
    # The feeder has its own connection: queues declared on the processor's connection
    # before its subscriber starts would be consumed without the subscriber's prefetch limit.
    feeder = Runtime(settings)
    stack = Stack([processor_service], settings)
    try:
        await feeder.start_store()
        await feeder.start_broker()
        store = feeder.store
        announced: list[MailReceived] = []
        for i, data in enumerate(mails):
            record = RawEmail(
                account="bench",
                source_key=f"1:{i}",
                folder="INBOX",
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
            )
            stored, _ = await store.raw_emails.insert(record=record, data=data)
            announced.append(
                MailReceived(raw_id=stored.id, account="bench", source_key=record.source_key)
            )
        start = time.perf_counter()
        for msg in announced:
            await publish(feeder.broker, msg, routing_key=MAIL_RECEIVED)
        # Counted from here: the processor's round trips (and the progress poll below, a
        # command every half second, a few hundredths of a command per mail).
        with counting() as trips:
            await stack.start()
            while (  # noqa: ASYNC110 - progress is polled from MongoDB; nothing signals it
                await store.db["raw_emails"].count_documents(
                    {"status": {"$in": ["processed", "failed"]}}
                )
                < count
            ):
                await asyncio.sleep(0.5)
            elapsed = time.perf_counter() - start
        failed = await store.db["raw_emails"].count_documents({"status": "failed"})
        cases = await store.db["cases"].count_documents({})
        took = sorted(TIMINGS)

        def pct(p: float) -> float:
            return took[min(len(took) - 1, int(p * len(took)))] * 1000

        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"mails:        {count} ({len(extra)} corpus mails in the mix, {failed} failed)")
        print(f"cases:        {cases}")
        print(f"throughput:   {count / elapsed:,.0f} mails/s ({elapsed:.1f} s)")
        print(
            f"processing time per mail (ms): "
            f"p50 {pct(0.5):,.0f}  p95 {pct(0.95):,.0f}  p99 {pct(0.99):,.0f}"
        )
        print(f"peak RSS:     {rss_mb:,.0f} MiB")
        print(f"round trips:  {trips.per_mail(count)}")
        print(f"MongoDB wait: {trips.time_shares()}")
        # A failed mail would flatter the throughput: show why each one failed.
        async for doc in store.db["raw_emails"].find({"status": "failed"}, {"error": 1}):
            print(f"failed:       {doc['_id']}: {doc.get('error')}")
    finally:
        await stack.stop()
        await feeder.broker.stop()
        await feeder.close()
        delete_vhost(vhost)
        mongo.stop()


def main() -> None:
    """Command line entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mails", type=int, default=2000)
    asyncio.run(run(parser.parse_args().mails))


if __name__ == "__main__":
    main()
