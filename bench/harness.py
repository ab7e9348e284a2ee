"""Servers and service processes for the whole-pipeline benchmarks (``chaos.py``, ``e2e.py``).

- :class:`RabbitNode`: a private RabbitMQ node that a run may stop and start (chaos); a run
  that never stops the broker takes a vhost on the machine's broker instead
  (``deploy.local.servers.create_vhost``).
- :class:`Mongo`: the MongoDB stand-in on a directory of its own, so it can be stopped, killed
  and started again on the same port and data, or a real MongoDB given by URL.
- :class:`Services`: the four services as separate processes (``faststream run``), or all of
  them in one (``mailroom run all``); each can be killed and started again, and its CPU time
  and peak RSS are read from ``/proc``.
- :func:`configure`: settings, the outgoing SMTP server and one IMAP account, over the API.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy.local._proc import HOST, free_ports, spawn, wait_until  # noqa: E402

BIN = Path(sys.executable).parent
SERVICES = ("fetcher", "processor", "sender")
"""The services a fault may kill; ``config`` runs beside them."""
ALL = "all"
"""The one process of ``mailroom run all``."""
RABBIT_CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"
RABBIT_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def state_dir(prefix: str) -> Path:
    """A fresh directory for one run's servers, reachable by the rabbitmq and Dovecot users."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    base.chmod(0o755)
    return base


class RabbitNode:
    """A private RabbitMQ node (Debian's server, run as the ``rabbitmq`` user)."""

    def __init__(self, base: Path) -> None:
        self.port, self.dist = free_ports(2)
        self.name = f"chaos{self.port}@localhost"
        self.dir = base / "rabbitmq"
        (self.dir / "mnesia").mkdir(parents=True)
        (self.dir / "log").mkdir()
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = {HOST}:{self.port}\nloopback_users = none\n"
        )
        (self.dir / "enabled_plugins").write_text("[].\n")  # no management port to collide
        self.env = {
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "HOME": "/var/lib/rabbitmq",
        }
        subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", str(self.dir)], check=True)
        base.chmod(0o755)
        self.url = f"amqp://guest:guest@{HOST}:{self.port}/"

    def _as_rabbitmq(self, command: str) -> list[str]:
        exports = " ".join(f"{k}={v}" for k, v in self.env.items())
        return ["su", "rabbitmq", "-s", "/bin/sh", "-c", f"exec env {exports} {command}"]

    def start(self) -> None:
        """Start the node and wait until it serves AMQP."""
        log = (self.dir / "server.log").open("ab")
        self.proc = subprocess.Popen(
            self._as_rabbitmq(RABBIT_SERVER), stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 120
        while True:  # until the node has registered, rabbitmqctl cannot even reach it
            try:
                self.ctl("await_startup", timeout=120)
                return
            except subprocess.CalledProcessError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def ctl(self, *args: str, timeout: float = 60) -> None:
        """rabbitmqctl against this node."""
        subprocess.run(
            self._as_rabbitmq(f"{RABBIT_CTL} -n {self.name} {' '.join(args)}"),
            check=True,
            capture_output=True,
            timeout=timeout,
        )

    def stop(self) -> None:
        """Stop and halt the node."""
        try:
            self.ctl("stop")
        except (subprocess.SubprocessError, OSError):
            self.proc.kill()
        self.proc.wait(timeout=60)


class Mongo:
    """The MongoDB stand-in on a directory, so it can be stopped, killed and started again;
    or, with ``url``, a MongoDB of the user's that this class never starts or stops."""

    def __init__(self, base: Path, *, url: str | None = None, cache: str = "512M") -> None:
        self.dir = base / "mongodb"
        self.dir.mkdir()
        self.own = url is None
        self.cache = cache
        (self.port,) = free_ports(1)
        # retryWrites=false: the stand-in's retryable-write bookkeeping slows every write.
        self.url = url or f"mongodb://{HOST}:{self.port}/?retryWrites=false"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start on the same port and data as before; wait until it answers."""
        if self.own:
            binary = BIN / "secantusd-py"
            args = [str(binary), "--host", HOST, "--port", str(self.port)]
            args += ["--storage-path", str(self.dir / "data"), "--cache-size", self.cache]
            self.proc = spawn(args, self.dir / "mongodb.log")
        wait_until(self._answers, 60, "MongoDB")

    def _answers(self) -> bool:
        from pymongo import MongoClient
        from pymongo.errors import PyMongoError

        client: MongoClient[dict[str, Any]] = MongoClient(self.url, serverSelectionTimeoutMS=300)
        try:
            client.admin.command("ping")
            return True
        except PyMongoError:
            return False
        finally:
            client.close()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop (or kill) the server, if this class started it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=60)
        self.proc = None

    @property
    def pid(self) -> int | None:
        """The stand-in's process id while it runs (None for a MongoDB given by URL)."""
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None


class Services:
    """The services as processes; each can be killed and started again."""

    def __init__(self, base: Path, env: dict[str, str], *, tag: str = "chaos") -> None:
        self.logs = base / "logs"
        self.logs.mkdir(exist_ok=True)
        self.env = env
        self.tag = tag
        self.api_port, *ports = free_ports(4)
        self.http = dict(zip(SERVICES, ports, strict=True))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        """Start one service, or with :data:`ALL` every service in one process."""
        own = {"MAILROOM_INSTANCE_ID": f"{self.tag}-{name}-{time.monotonic_ns()}"}
        if name == ALL:
            command = [str(BIN / "mailroom"), "run", ALL, "--host", HOST]
            command += ["--port", str(self.api_port)]
        else:
            command = [str(BIN / "faststream"), "run", f"services.{name}.app:app"]
            if name == "config":
                command += ["--host", HOST, "--port", str(self.api_port)]
            else:
                own["MAILROOM_HTTP_PORT"] = str(self.http[name])
        log = (self.logs / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            command,
            env={**os.environ, **self.env, **own},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )

    def kill(self, name: str) -> None:
        """kill -9 one service."""
        proc = self.procs[name]
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    def stop_all(self) -> None:
        """Stop every service."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a running process (its reaped children included)."""
    stat = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    # Fields 14-17 of proc(5): utime, stime, cutime, cstime; counted from field 3 here.
    return sum(int(v) for v in stat[11:15]) / CLOCK_TICKS


def peak_rss_mib(pid: int) -> float:
    """The peak resident set of a running process so far (``VmHWM``), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid} (this bench needs Linux)")


def rss_mib(pid: int) -> float:
    """The resident set of a running process now (``VmRSS``), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid} (this bench needs Linux)")


async def configure(
    api_port: int,
    token: str,
    *,
    account: dict[str, Any],
    smtp_port: int,
    settings: dict[str, Any] | None = None,
) -> None:
    """Wait for the config API, then set the settings, the outgoing SMTP server (plain, on
    127.0.0.1) and one incoming account over it."""
    async with httpx.AsyncClient(
        base_url=f"http://{HOST}:{api_port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ) as api:
        deadline = time.monotonic() + 120
        while True:
            try:
                if (await api.get("/readyz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the config service did not become ready")
            await asyncio.sleep(0.5)
        for method, path, body in (
            ("PATCH", "/settings/settings", {"poll_interval_seconds": 0.5, **(settings or {})}),
            ("PUT", "/outgoing", {"host": HOST, "port": smtp_port, "security": "none"}),
            ("POST", "/accounts", account),
        ):
            response = await api.request(method, path, json=body)
            if response.status_code >= 300:
                raise RuntimeError(f"{method} {path}: {response.text}")
