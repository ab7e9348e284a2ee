"""Page times of the console with a full desk and many cases, as a signed-in operator waits.

    .venv/bin/python bench/web.py [--failed 100000] [--cases 100000] [--requests 200]
                                  [--path /console/failed --path '/console/cases/{case}' ...]

Starts its own MongoDB stand-in (on disk: 200,000 documents overflow its in-memory cache)
and a private RabbitMQ vhost, bulk-inserts the failed mails, the cases and one case's thread
straight through the store (the pipeline would take hours for 100,000 of each), runs the
config service in this process (its ASGI app, no HTTP server in between), signs in and asks
for each path ``--requests`` times in a row, printing p50/p95/max against the target
(p95 ≤ 150 ms). A path that answers 404 is skipped with a note (a page another branch
builds). ``{deep}`` in a path is the position 50,000 entries down the desk, ``{burst}`` the
middle of the outage burst, ``{case}`` the number of the case with the thread. Removes the
database, the vhost and the files after.

The failed mails: three accounts, 10 % replayed, failure times spread over 60 days with an
outage burst of 5,000 failures within ten seconds in the middle (the dense case for the
desk's window reads).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy.local.servers import create_vhost, delete_vhost, start_mongodb  # noqa: E402
from services.config.service import build as config_service  # noqa: E402
from services.config.users import add_user  # noqa: E402
from shared.models.desk import DeskCursor  # noqa: E402
from shared.models.messages import MailAddress, MailReceived, utcnow  # noqa: E402
from shared.models.records import Case, CaseMessage, FailedMail  # noqa: E402
from shared.runtime import Runtime  # noqa: E402
from shared.service import Stack  # noqa: E402
from shared.settings import SharedSettings  # noqa: E402

TARGET_P95_MS = 150.0
BATCH = 2000
ACCOUNTS = ("support", "sales", "billing")
ERRORS = (
    "rejected by script 'reject_subject': subject matches the reject pattern",
    "unparseable mail: no header block",
    "delivery limit: dead-lettered after 5 deliveries",
    "complaint we cannot tie to a mail: no VERP token, no Message-ID",
    "timeout talking to the case system",
)
THREAD_LENGTH = 30
PASSWORD = "bench-web-password-0123"
DEFAULT_PATHS = (
    "/console/failed",
    "/console/failed?after={deep}",
    "/console/failed?after={burst}",
    "/console/failed?account=sales",
    "/console/failed?error=timeout",
    "/console/failed?sender=c1234@",
    "/console/cases",
    "/console/cases/{case}",
)


def failed_docs(count: int) -> tuple[list[dict[str, object]], dict[str, str]]:
    """The desk's documents and two positions in the list: 50,000 entries (or half-way)
    down, and the middle of the burst."""
    now = utcnow().replace(microsecond=0)
    start = now - timedelta(days=60)
    step = timedelta(days=60) / max(count, 1)
    burst_at, burst = start + timedelta(days=30), range(count * 70 // 100, count * 75 // 100)
    docs, keys = [], []
    for i in range(count):
        at = burst_at + timedelta(milliseconds=i * 2) if i in burst else start + step * i
        at = at.replace(microsecond=at.microsecond // 1000 * 1000)  # MongoDB keeps ms
        account = ACCOUNTS[i % 3]
        failed_id = f"processor:bench{i:07d}"
        body = MailReceived(raw_id=f"bench{i:07d}", account=account, source_key=f"1:{i}")
        entry = FailedMail(
            id=failed_id,
            queue="processor.failed",
            routing_key="mail.received",
            ref=body.raw_id,
            body=body.model_dump(mode="json"),
            account=account,
            sender=f"c{i % 5000}@example{i % 7}.org",
            subject=f"Printer {i} is on fire",
            error=ERRORS[i % len(ERRORS)],
            attempts=1 + i % 5,
            first_failed_at=at,
            last_failed_at=at,
            status="replayed" if i % 10 == 0 else "failed",
        )
        docs.append(entry.model_dump(by_alias=True))
        if entry.status == "failed":
            keys.append((at, failed_id))
    keys.sort(reverse=True)
    deep = DeskCursor(
        at=keys[min(50_000, len(keys) // 2)][0], id=keys[min(50_000, len(keys) // 2)][1]
    )
    middle = burst_at + timedelta(milliseconds=len(burst))
    inside = DeskCursor(at=middle, id="processor:bench9999999")
    return docs, {"deep": deep.encode(), "burst": inside.encode()}


async def fill(rt: Runtime, failed: int, cases: int) -> dict[str, str]:
    """Bulk-insert the desk, the cases and one thread; the values of the path fields."""
    docs, positions = failed_docs(failed)
    collection = rt.store.db["failed_mails"]
    for i in range(0, len(docs), BATCH):
        await collection.insert_many(docs[i : i + BATCH], ordered=False)
    first, now = 10001, utcnow()
    for i in range(0, cases, BATCH):
        batch = [
            Case(
                number=first + n,
                subject=f"Printer on floor {n % 40} is broken ({n})",
                contact=MailAddress(name="Customer", address=f"c{n % 5000}@example.org"),
                origin_raw_id=f"case-raw-{n}",
                created_at=now - timedelta(minutes=cases - n),
                updated_at=now - timedelta(minutes=cases - n),
            ).model_dump()
            for n in range(i, min(i + BATCH, cases))
        ]
        await rt.store.db["cases"].insert_many(batch, ordered=False)
    await rt.store.db["counters"].update_one(
        {"_id": "case_number"}, {"$set": {"seq": cases}}, upsert=True
    )
    thread = first + cases // 2
    messages = [
        CaseMessage(
            case_number=thread,
            direction="in" if n % 2 == 0 else "out",
            message_id=f"<bench-{n}@example.org>",
            raw_id=f"thread-raw-{n}" if n % 2 == 0 else None,
            outbox_id=None if n % 2 == 0 else f"thread-out-{n}",
            subject=f"Re: Printer on floor 1 is broken ({n})",
            text="Hello,\nstill broken.\n" * 20,
            created_at=now - timedelta(minutes=THREAD_LENGTH - n),
        ).model_dump(by_alias=True)
        for n in range(THREAD_LENGTH)
    ]
    await rt.store.db["messages"].insert_many(messages)
    return {**positions, "case": str(thread)}


async def measure(client: httpx.AsyncClient, path: str, requests: int) -> str:
    """``requests`` sequential GETs of ``path``: one line of figures (or why it was skipped)."""
    first = await client.get(path)
    if first.status_code == 404:
        return f"{path:<42} skipped: 404 (the page is not on this branch)"
    if first.status_code != 200:
        return f"{path:<42} skipped: answered {first.status_code}"
    for _ in range(4):  # warm caches
        await client.get(path)
    times = []
    for _ in range(requests):
        begin = time.perf_counter()
        answer = await client.get(path)
        times.append((time.perf_counter() - begin) * 1000)
        if answer.status_code != 200:
            return f"{path:<42} failed: answered {answer.status_code} during the run"
    p50, p95 = statistics.median(times), statistics.quantiles(times, n=100)[94]
    verdict = "ok" if p95 <= TARGET_P95_MS else "OVER"
    return (
        f"{path:<42} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  max {max(times):6.1f} ms"
        f"  target p95 ≤ {TARGET_P95_MS:.0f} ms  {verdict}"
    )


async def main(failed: int, cases: int, requests: int, paths: list[str]) -> None:
    """Start the servers, fill them, time the pages, print the figures, clean up."""
    state = Path(tempfile.mkdtemp(prefix="mailroom-bench-web-"))
    mongo = start_mongodb(state, data_dir=state / "mongodb")
    vhost = f"mailroom-bench-web-{uuid.uuid4().hex[:8]}"
    settings = SharedSettings(
        broker_url=create_vhost(vhost),
        mongodb_url=mongo.url,
        database="bench_web",
        secret_key="bench-web-secret-key",
        api_token="bench-web-api-token",
        log_level="WARNING",
    )
    stack = Stack([config_service], settings)
    try:
        await stack.start()
        begin = time.perf_counter()
        fields = await fill(stack.rt, failed, cases)
        print(
            f"loaded {failed} failed mails, {cases} cases and a {THREAD_LENGTH}-mail thread"
            f" in {time.perf_counter() - begin:.0f} s"
        )
        await add_user(stack.rt, name="bench", role="operator", password=PASSWORD, who="bench")
        transport = httpx.ASGITransport(app=stack.asgi)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://config",
            headers={"Authorization": "Bearer bench-web-api-token"},  # for API paths
        ) as client:
            signed = await client.post(
                "/console/signin", data={"username": "bench", "password": PASSWORD}
            )
            assert signed.status_code == 303, signed.text
            print(f"{requests} requests each, in process, load average {os.getloadavg()[0]:.2f}")
            for path in paths:
                print(await measure(client, path.format(**fields), requests), flush=True)
            count = await measure(client, "/console/failed/replay-all", 5)
            print(f"{count}  (replay-all confirmation: counts up to 1,001; 5 requests)")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        await stack.rt.store.client.drop_database("bench_web")
        await stack.stop()
        delete_vhost(vhost)
        mongo.stop()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--failed", type=int, default=100_000)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument(
        "--path", action="append", help="a path to time (repeatable; default: the list)"
    )
    args = parser.parse_args()
    asyncio.run(main(args.failed, args.cases, args.requests, args.path or list(DEFAULT_PATHS)))
