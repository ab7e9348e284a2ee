"""Wall time of the ``mailroom`` CLI, as an operator at a prompt waits for it.

    .venv/bin/python bench/cli.py [--runs 20]

Starts its own MongoDB stand-in and a private RabbitMQ vhost, fills them like a small
running system (two accounts, 100 cases, 100 failed mails), then runs each command
``--runs`` times as a new process (the console script of this venv) and prints the median,
the fastest and the slowest, next to the target: ``mailroom --help`` ≤ 0.3 s, a listing
≤ 0.8 s. It also times a call whose MongoDB does not answer (target: fails within 3 s).
The machine's load average is printed with the figures: on a busy machine every figure
grows with it. Removes the database and the vhost afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy.local._proc import free_ports  # noqa: E402
from deploy.local.servers import create_vhost, delete_vhost, start_mongodb  # noqa: E402
from shared.models.messages import MailAddress, new_id  # noqa: E402
from shared.runtime import Runtime  # noqa: E402
from shared.settings import SharedSettings  # noqa: E402

MAILROOM = Path(sys.executable).with_name("mailroom")
HELP_TARGET_S = 0.3
LISTING_TARGET_S = 0.8
UNREACHABLE_TARGET_S = 3.0
LISTINGS = (
    ("failed", "list"),
    ("cases", "list"),
    ("accounts", "list"),
    ("archive", "list"),
    ("fetchers",),
    ("properties", "list"),
)


def add_accounts(env: dict[str, str]) -> None:
    """Two accounts, added through the CLI as an operator adds them."""
    for name in ("support", "sales"):
        args = ("accounts", "add", name, "--host", "imap.example.org")
        login = ("--username", f"{name}@example.org", "--password-stdin")
        added = subprocess.run(
            [str(MAILROOM), *args, *login],
            input="bench-password\n",
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if added.returncode != 0:
            raise SystemExit(f"could not add account {name}: {added.stderr}")


async def fill(settings: SharedSettings) -> None:
    """100 cases and 100 failed mails."""
    rt = Runtime(settings)
    await rt.start_store()
    try:
        for i in range(100):
            await rt.store.cases.create_for_raw(
                raw_id=new_id(),
                subject=f"Printer on floor {i} is broken",
                contact=MailAddress(name="Customer", address=f"c{i}@example.org"),
            )
            await rt.store.desk.record(
                failed_id=new_id(),
                queue="processor.dead",
                routing_key="mail.received",
                ref=new_id(),
                body={},
                account="support",
                error="rejected by script 'reject_subject': subject matches the reject pattern",
                attempts=1,
                sender=f"c{i}@example.org",
                subject=f"Mail {i}",
            )
    finally:
        await rt.close()


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(args: tuple[str, ...], env: dict[str, str], runs: int) -> tuple[list[float], list[float]]:
    """Wall and CPU (user + system) time of ``runs`` fresh processes of ``mailroom ARGS``
    (each must end as expected)."""
    times, cpu = [], []
    for _ in range(runs):
        begin, cpu_begin = time.perf_counter(), cpu_of_children()
        result = subprocess.run(
            [str(MAILROOM), *args], env=env, capture_output=True, text=True, check=False
        )
        times.append(time.perf_counter() - begin)
        cpu.append(cpu_of_children() - cpu_begin)
        if result.returncode != 0 and args[0] != "--help":
            expected_failure = "MongoDB cannot be reached" in result.stderr
            if not expected_failure:
                raise SystemExit(f"mailroom {' '.join(args)} failed: {result.stderr}")
    return times, cpu


def line(label: str, figures: tuple[list[float], list[float]], target: float) -> str:
    """One command's figures: wall time median, min, max; CPU median; against the target."""
    times, cpu = figures
    median = statistics.median(times)
    verdict = "ok" if median <= target else "OVER"
    return (
        f"{label:<30} wall median {median:5.2f} s (min {min(times):4.2f}, max {max(times):4.2f})"
        f"  cpu {statistics.median(cpu):4.2f} s  target ≤ {target:.1f} s  {verdict}"
    )


async def main(runs: int) -> None:
    """Start the servers, fill them, time the commands, print the figures, clean up."""
    state = Path(tempfile.mkdtemp(prefix="mailroom-bench-cli-"))
    mongo = start_mongodb(state)
    vhost = f"mailroom-bench-cli-{uuid.uuid4().hex[:8]}"
    broker_url = create_vhost(vhost)
    settings = SharedSettings(
        broker_url=broker_url,
        mongodb_url=mongo.url,
        database="bench_cli",
        secret_key="bench-cli-secret-key",
    )
    # As an installed CLI runs: Python caches the bytecode of the project's modules (a
    # PYTHONDONTWRITEBYTECODE in this shell would make every call compile them again).
    inherited = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env = {
        **inherited,
        "COLUMNS": "120",
        "MAILROOM_BROKER_URL": broker_url,
        "MAILROOM_MONGODB_URL": mongo.url,
        "MAILROOM_DATABASE": "bench_cli",
        "MAILROOM_SECRET_KEY": "bench-cli-secret-key",
    }
    try:
        add_accounts(env)
        await fill(settings)
        for args in (("--help",), *LISTINGS):  # warm the file cache and the bytecode
            timed(args, env, 1)
        print(f"mailroom CLI, {runs} runs each, load average {os.getloadavg()[0]:.2f}")
        print(line("mailroom --help", timed(("--help",), env, runs), HELP_TARGET_S))
        for args in LISTINGS:
            label = f"mailroom {' '.join(args)}"
            print(line(label, timed(args, env, runs), LISTING_TARGET_S))
        (closed,) = free_ports(1)
        down = {**env, "MAILROOM_MONGODB_URL": f"mongodb://127.0.0.1:{closed}/"}
        failing = timed(("cases", "list"), down, max(3, runs // 4))
        print(line("cases list, MongoDB down", failing, UNREACHABLE_TARGET_S))
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        rt = Runtime(settings)
        await rt.start_store()
        await rt.store.client.drop_database("bench_cli")
        await rt.close()
        delete_vhost(vhost)
        mongo.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    asyncio.run(main(parser.parse_args().runs))
