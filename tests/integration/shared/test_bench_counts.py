"""The benchmarks' counting hook (``shared.bench_counts``): with ``MAILROOM_BENCH_COUNTS`` set, a
process opened through ``open_store`` writes its MongoDB commands and AMQP publishes to
``<prefix>.<pid>``; unset, it writes nothing. Each case runs in a process of its own, as a
service would: the hook wraps a library method for the whole process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from shared.bench_counts import ENV

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys, time
    from shared.broker import build_broker, declare_topology, publish
    from shared.models.messages import MailReceived
    from shared.store import open_store
    from shared.topology import MAIL_RECEIVED

    async def main(mongo: str, database: str, amqp: str) -> None:
        store = await open_store(mongo, database)
        await store.db["bench"].insert_one({"n": 1})
        await store.db["bench"].insert_many([{"m": 1}, {"m": 2}, {"m": 3}])
        await store.db["bench"].find_one({"n": 1})
        await store.db["bench"].update_one({"n": 1}, {"$set": {"n": 2}})
        broker = build_broker(amqp)
        await broker.connect()
        await declare_topology(broker)
        event = MailReceived(raw_id="r1", account="a", source_key="1:1")
        await publish(broker, event, routing_key=MAIL_RECEIVED)
        await broker.stop()
        await store.close()
        time.sleep(1.2)  # the writer thread writes twice a second

    asyncio.run(main(*sys.argv[1:]))
    """
)


def _run(tmp_path: Path, mongo_url: str, database: str, amqp: str, prefix: str | None) -> int:
    env = {k: v for k, v in os.environ.items() if k != ENV}
    env["PYTHONPATH"] = str(ROOT)
    if prefix is not None:
        env[ENV] = prefix
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, mongo_url, database, amqp],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.returncode


def test_a_process_writes_its_commands_and_publishes(
    tmp_path: Path, mongo_url: str, mongo_db_name: str, rabbit_url: str
) -> None:
    prefix = tmp_path / "counts"
    _run(tmp_path, mongo_url, mongo_db_name, rabbit_url, str(prefix))
    (written,) = [p for p in tmp_path.iterdir() if p.name.startswith("counts.")]
    assert written.name.split(".")[1].isdigit(), "one file per process, named by its pid"
    counts = json.loads(written.read_text())
    commands = counts["commands"]
    assert commands["insert bench"] == 2 and commands["find bench"] == 1
    assert commands["update bench"] == 1, "counted by command name and collection"
    assert any(k.startswith("createIndexes ") for k in commands), "open_store's own count too"
    assert {"insert bench", "find bench", "update bench"} <= set(counts["micros"]), "round trips"
    assert counts["publishes"] == {"mail.received": 1}
    # What a write costs a database is mostly per document: the statements each write carried.
    assert counts["writes"]["insert bench"] == 4 and counts["writes"]["update bench"] == 1
    assert "find bench" not in counts["writes"]


def test_without_the_variable_nothing_is_written(
    tmp_path: Path, mongo_url: str, mongo_db_name: str, rabbit_url: str
) -> None:
    _run(tmp_path, mongo_url, mongo_db_name, rabbit_url, None)
    assert list(tmp_path.iterdir()) == []
