"""Running several real fetcher processes (``faststream run services.fetcher.app:app``) on
the test servers, and reading the fleet's state from MongoDB."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aio_pika
from pydantic import SecretStr

from shared.models.fetchers import FetcherInstance, Lease
from shared.models.messages import utcnow
from shared.runtime import Runtime
from shared.topology import PROCESSOR_INBOUND
from tests.support import SECRET_KEY

FASTSTREAM = Path(sys.executable).parent / "faststream"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Fetchers:
    """Fetcher processes by instance id, with their logs in one directory."""

    def __init__(self, rt: Runtime, logs: Path) -> None:
        self._rt = rt
        self._logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> subprocess.Popen[bytes]:
        """Start (or restart) the instance ``name`` (MAILROOM_FETCHER_ID) with its own log."""
        settings = self._rt.settings
        secret = {
            "MAILROOM_BROKER_URL": settings.broker_url,
            "MAILROOM_MONGODB_URL": settings.mongodb_url,
        }
        env = {
            **os.environ,
            **{k: v.get_secret_value() for k, v in secret.items() if isinstance(v, SecretStr)},
            "MAILROOM_DATABASE": settings.database,
            "MAILROOM_SECRET_KEY": SECRET_KEY,
            "MAILROOM_FETCHER_ID": name,
            "MAILROOM_INSTANCE_ID": name,
            "MAILROOM_HTTP_PORT": str(free_port()),
            "MAILROOM_LOG_JSON": "false",
            "PYTHONUNBUFFERED": "1",
        }
        with (self._logs / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                [str(FASTSTREAM), "run", "services.fetcher.app:app"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.procs[name] = proc
        return proc

    def running(self) -> set[str]:
        """Ids of the instances whose process is alive (paused ones included)."""
        return {name for name, proc in self.procs.items() if proc.poll() is None}

    def kill(self, name: str) -> None:
        """SIGKILL: no clean shutdown, the leases stay until they expire."""
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait(timeout=30)

    def signal(self, name: str, sig: signal.Signals) -> None:
        """Send ``sig`` (SIGSTOP, SIGCONT) to the instance."""
        self.procs[name].send_signal(sig)

    def stop_all(self) -> dict[str, int]:
        """SIGTERM (and SIGCONT, for a paused one) to all; their exit codes."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.send_signal(signal.SIGTERM)
        codes = {}
        for name, proc in self.procs.items():
            try:
                codes[name] = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = proc.wait()
        return codes


@contextmanager
def fetchers(rt: Runtime, logs: Path) -> Iterator[Fetchers]:
    """Fetcher processes that are stopped (cleanly, or killed if they hang) afterwards."""
    fleet = Fetchers(rt, logs)
    try:
        yield fleet
    finally:
        fleet.stop_all()


async def valid_leases(rt: Runtime) -> dict[str, Lease]:
    """Account → its lease, for leases that have not expired."""
    now = utcnow()
    return {
        lease.account: lease
        for lease in await rt.store.leases.all()
        if lease.owner is not None and lease.expires_at > now
    }


async def heartbeats(rt: Runtime) -> dict[str, FetcherInstance]:
    """Instance id → its heartbeat document."""
    return {i.id: i for i in await rt.store.fetchers.all()}


async def settled(rt: Runtime, accounts: set[str], instances: set[str]) -> dict[str, str] | None:
    """Account → owner once every account has a valid lease held by one of ``instances``,
    the instances' heartbeats list exactly these accounts between them, and every one of
    ``instances`` holds some; else None."""
    leases = await valid_leases(rt)
    owners = {name: lease.owner for name, lease in leases.items() if name in accounts}
    if set(owners) != accounts or set(owners.values()) != instances:
        return None
    beats = await heartbeats(rt)
    listed = [(a, i) for i in instances if i in beats for a in beats[i].accounts]
    if sorted(listed) != sorted(owners.items()):
        return None
    return {a: str(o) for a, o in owners.items()}


async def purge_announcements(rt: Runtime) -> int:
    """Empty ``processor.inbound`` at once (draining hundreds one by one takes long)."""
    url = rt.settings.broker_url.get_secret_value()
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(PROCESSOR_INBOUND.name, passive=True)
        purged = await queue.purge()
        return int(purged.message_count or 0)
