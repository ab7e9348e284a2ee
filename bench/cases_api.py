"""Page times of the cases and outbox API at 100,000 cases, on the local MongoDB stand-in.

    .venv/bin/python bench/cases_api.py [--cases 100000] [--requests 200]

Starts its own stand-in (on disk: the in-memory mode does not hold this much), loads
``--cases`` cases, one incoming mail each and one outbox entry each (written in batches, as
fast as the stand-in takes them), then asks the config API in process (FastAPI with its
serialisation, no network) for each page ``--requests`` times and prints p50 and p95 per
page: the newest cases, a page deep down (a keyset cursor near the oldest case), a subject
search, a participant search, a date range, a thread, the outbox, the outbox filtered by
recipient and a page deep down. Target: p95 ≤ 150 ms. The load average is printed with the
figures: on a busy machine every figure grows with it.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy.local.servers import start_mongodb  # noqa: E402
from services.config.api.main import create_api  # noqa: E402
from shared.runtime import Runtime  # noqa: E402
from shared.settings import SharedSettings  # noqa: E402
from shared.store.cases import CASE_COUNTER, FIRST_CASE_NUMBER  # noqa: E402

TOKEN = "bench-token-0123456789"
TARGET_MS = 150.0
BATCH = 2000


async def load(rt: Runtime, cases: int) -> None:
    """``cases`` cases a minute apart, each with its mail and its acknowledgement."""
    db = rt.store.db
    start = datetime.now(UTC) - timedelta(minutes=cases)
    for first in range(0, cases, BATCH):
        case_docs, messages, outbox = [], [], []
        for i in range(first, min(first + BATCH, cases)):
            number = FIRST_CASE_NUMBER + i
            at = start + timedelta(minutes=i)
            who = f"customer{i % 5000}@example.org"
            subject = f"Printer {i} on floor {i % 7} is broken"
            case_docs.append(
                {
                    "number": number,
                    "subject": subject,
                    "contact": {"name": "", "address": who},
                    "status": "open",
                    "origin_raw_id": f"raw{i}",
                    "conversation_id": None,
                    "created_at": at,
                    "updated_at": at,
                }
            )
            messages.append(
                {
                    "case_number": number,
                    "direction": "in",
                    "message_id": f"<m{i}@example.org>",
                    "raw_id": f"raw{i}",
                    "subject": subject,
                    "from": [{"name": "", "address": who, "replyable": True}],
                    "to": [{"name": "", "address": "support@example.com", "replyable": True}],
                    "cc": [],
                    "text": "Hello,\nplease help.\n",
                    "attachments": [],
                    "rule": "new",
                    "reason": "no case reference",
                    "notes": [],
                    "classification": "normal",
                    "created_at": at,
                }
            )
            outbox.append(
                {
                    "_id": f"ack-raw{i}",
                    "message_id": f"<ack-raw{i}@example.com>",
                    "case_number": number,
                    "kind": "acknowledgement",
                    "to": [{"name": "", "address": who}],
                    "cc": [],
                    "subject": f"{subject} [Case#{number}]",
                    "status": "sent",
                    "attempts": 1,
                    "smtp_reply": "250 OK queued",
                    "created_at": at,
                    "sent_at": at,
                    "recipients": [
                        {"address": who, "state": "sent", "reply": "250 OK", "attempts": 1}
                    ],
                }
            )
        await db["cases"].insert_many(case_docs, ordered=False)
        await db["messages"].insert_many(messages, ordered=False)
        await db["outbox"].insert_many(outbox, ordered=False)
        await db["counters"].update_one(
            {"_id": CASE_COUNTER}, {"$set": {"seq": len(case_docs) + first}}, upsert=True
        )
        print(f"\rloaded {min(first + BATCH, cases)}/{cases}", end="", flush=True)
    print()


async def time_pages(rt: Runtime, cases: int, requests: int) -> list[tuple[str, float, float, int]]:
    """(page, p50 ms, p95 ms, rows shown) of each page."""
    newest = FIRST_CASE_NUMBER + cases - 1
    old = FIRST_CASE_NUMBER + 100
    since = (datetime.now(UTC) - timedelta(minutes=cases // 2)).isoformat()
    until = (datetime.now(UTC) - timedelta(minutes=cases // 2 - 600)).isoformat()
    pages = {
        "cases, newest": "/cases",
        "cases, deep (keyset)": f"/cases?before={old}",
        "cases, subject search": "/cases?subject=floor%203",
        "cases, participant": "/cases?participant=Customer4990%40example.org",
        "cases, date range": f"/cases?since={since}&until={until}".replace("+", "%2B"),
        "case thread": f"/cases/{newest - 5}",
        "outbox, newest": "/outbox",
        "outbox, by recipient": "/outbox?recipient=customer4990%40example.org",
        "outbox, by status": "/outbox?status=sent",
    }
    results: list[tuple[str, float, float, int]] = []
    transport = httpx.ASGITransport(app=create_api(rt))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://b", headers=headers) as c:
        deep = (await c.get("/outbox?limit=500")).json()["next"]
        pages["outbox, page 2 (cursor)"] = f"/outbox?after={deep}"
        for name, url in pages.items():
            times = []
            for _ in range(requests):
                begin = time.perf_counter()
                answer = await c.get(url)
                times.append((time.perf_counter() - begin) * 1000)
                assert answer.status_code == 200, (url, answer.text)
            body = answer.json()
            shown = len(body.get("items") or body.get("mails") or [])
            p95 = statistics.quantiles(times, n=20)[18]
            results.append((name, statistics.median(times), p95, shown))
            print(f"  {name:28} {shown:3} rows  p50 {results[-1][1]:7.1f} ms   p95 {p95:7.1f} ms")
    return results


async def main() -> None:
    """Load, time, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="mailroom-bench-cases-"))
    server = start_mongodb(state, data_dir=state / "db")
    rt = Runtime(SharedSettings(mongodb_url=server.url, database="bench", api_token=TOKEN))
    try:
        await rt.start_store()
        began = time.perf_counter()
        await load(rt, args.cases)
        print(f"load: {args.cases} cases in {time.perf_counter() - began:.0f} s")
        results = await time_pages(rt, args.cases, args.requests)
        load1 = os.getloadavg()[0]
        print(f"{args.cases} cases, {args.requests} requests per page, load average {load1:.1f}")
        for name, _, p95, _ in results:
            mark = "ok" if p95 <= TARGET_MS else f"over {TARGET_MS:.0f} ms"
            print(f"  {name:28} p95 target {TARGET_MS:.0f} ms: {mark}")
    finally:
        await rt.close()
        server.stop()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
