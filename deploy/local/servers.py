"""Real RabbitMQ, MongoDB, Dovecot and SMTP servers for development and tests.

Everything a run starts lives under one state directory and listens on 127.0.0.1 on ports
picked at run time, so several runs can coexist. Missing Debian packages are installed with
apt-get (needs root). RabbitMQ is the machine's shared broker on port 5672: runs are kept
apart by vhosts, and it is never stopped here. ``deploy.local.stack`` assembles these into
the local default that ``make run`` starts; the test fixtures start them one by one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from deploy.local._proc import (
    HOST,
    alive_or_raise,
    apt_install,
    free_ports,
    listening,
    need_tool,
    run,
    spawn,
    stop_process,
    tool,
    wait_until,
)
from deploy.local.dovecot import Dovecot, start_dovecot, stop_dovecot
from deploy.local.oauth_issuer import OAuthIssuer, start_oauth_issuer
from deploy.local.tls import make_cert

__all__ = [
    "Dovecot",
    "MongoServer",
    "OAuthIssuer",
    "SmtpSink",
    "create_vhost",
    "delete_vhost",
    "ensure_rabbitmq",
    "make_cert",
    "standin_url",
    "start_dovecot",
    "start_mongodb",
    "start_oauth_issuer",
    "start_smtp_sink",
    "stop_dovecot",
]

RABBIT_PORT = 5672
DEFAULT_BROKER_URL = f"amqp://guest:guest@{HOST}:{RABBIT_PORT}/"
SINK_SCRIPT = Path(__file__).with_name("smtp_sink.py")


# --- RabbitMQ -----------------------------------------------------------------------------


def ensure_rabbitmq() -> str:
    """Return the AMQP URL of a running broker, installing and starting RabbitMQ if needed."""
    configured = os.environ.get("MAILROOM_BROKER_URL")
    if configured:
        return configured
    if listening(RABBIT_PORT):
        return DEFAULT_BROKER_URL
    if tool("rabbitmq-server") is None:
        apt_install("rabbitmq-server")
    run([need_tool("rabbitmq-server"), "-detached"], timeout=60)
    deadline = time.monotonic() + 90
    # await_startup fails at once while the freshly detached node is not reachable yet.
    while True:
        try:
            run([need_tool("rabbitmqctl"), "await_startup", "--timeout", "30"], timeout=45)
            break
        except (RuntimeError, subprocess.TimeoutExpired):
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    wait_until(lambda: listening(RABBIT_PORT), 30, "RabbitMQ AMQP port")
    return DEFAULT_BROKER_URL


def create_vhost(name: str) -> str:
    """Create vhost ``name``, give the broker user full rights on it, return its AMQP URL."""
    parts = urlsplit(ensure_rabbitmq())
    ctl = need_tool("rabbitmqctl")
    run([ctl, "add_vhost", name], timeout=60)
    run([ctl, "set_permissions", "-p", name, parts.username or "guest", ".*", ".*", ".*"], 60)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(name, safe=""), parts.query, ""))


def delete_vhost(name: str) -> None:
    """Delete vhost ``name`` with all its queues and exchanges."""
    run([need_tool("rabbitmqctl"), "delete_vhost", name], timeout=60)


# --- MongoDB ------------------------------------------------------------------------------


@dataclass
class MongoServer:
    """A MongoDB server for one run; ``stop()`` is a no-op for one given by MONGODB_URL."""

    url: str
    pid: int | None = None
    container_id: str | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    def stop(self) -> None:
        """Stop the server if this run started it."""
        if self.container_id is not None:
            run(["docker", "rm", "-f", self.container_id], timeout=60)
        if self.pid is not None:
            stop_process(self.pid, self._proc)


def _docker_works() -> bool:
    if tool("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _mongo_answers(url: str) -> bool:
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    client: MongoClient[dict[str, object]] = MongoClient(url, serverSelectionTimeoutMS=500)
    try:
        client.admin.command("ping")
    except PyMongoError:
        return False
    finally:
        client.close()
    return True


def standin_url(port: int) -> str:
    """The URL of a stand-in on ``port``.

    ``retryWrites=false``: the stand-in's retryable-write bookkeeping scans a growing table on
    every write (measured 5x slower end to end); a single local node gains nothing from it.
    """
    return f"mongodb://{HOST}:{port}/?retryWrites=false"


def start_mongodb(
    state_dir: Path, *, data_dir: Path | None = None, port: int | None = None
) -> MongoServer:
    """Start MongoDB: MONGODB_URL if set, else testcontainers with Docker, else SecantusDB.

    With ``data_dir`` the data is kept there across restarts: always the stand-in (a
    container's data would go with the container), on ``port`` when that is free.
    Without it the stand-in keeps everything in memory (fast, for tests).
    """
    configured = os.environ.get("MONGODB_URL")
    if configured:
        return MongoServer(url=configured)
    if data_dir is None and _docker_works():
        # Test-only dependency, needed only where a Docker engine exists.
        from testcontainers.community.mongodb import MongoDbContainer

        container = MongoDbContainer("mongo:7.0").start()
        return MongoServer(
            url=container.get_connection_url(),
            container_id=container.get_wrapped_container().id,
        )
    binary = Path(sys.executable).with_name("secantusd-py")
    if not binary.exists():
        raise RuntimeError(f"{binary} missing: pip install -e '.[local]' (secantusdb)")
    state_dir = state_dir.resolve()
    log, scratch = state_dir / "logs" / "mongodb.log", state_dir / "mongodb-tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    if port is None or listening(port):
        (port,) = free_ports(1)
    storage = ":memory:"
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        storage = str(data_dir.resolve())
    args = [str(binary), "--host", HOST, "--port", str(port), "--storage-path", storage]
    # The in-memory mode keeps scratch files in TMPDIR: keep them in the state directory.
    env = {**os.environ, "TMPDIR": str(scratch)}
    proc = spawn([*args, "--cache-size", "256M"], log, env=env)
    server = MongoServer(url=standin_url(port), pid=proc.pid, _proc=proc)

    def ready() -> bool:
        alive_or_raise(proc, log, "secantusd-py")
        return _mongo_answers(server.url)

    try:
        wait_until(ready, 60, "MongoDB stand-in")
    except BaseException:
        server.stop()
        raise
    return server


# --- SMTP sink ----------------------------------------------------------------------------


@dataclass
class SmtpSink:
    """The aiosmtpd sink: SMTP (STARTTLS optional) on ``port``, implicit TLS on ``smtps_port``."""

    port: int
    smtps_port: int
    maildir: Path
    cert_file: Path
    pid: int
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    def stop(self) -> None:
        """Stop the sink; stored messages stay in ``maildir``."""
        stop_process(self.pid, self._proc)

    def messages(self) -> list[EmailMessage]:
        """Every message received so far, oldest first, with the X-Sink-* envelope headers."""
        files = [p for sub in ("new", "cur") for p in (self.maildir / sub).iterdir()]
        parser = BytesParser(_class=EmailMessage, policy=default_policy)
        return [parser.parsebytes(p.read_bytes()) for p in sorted(files, key=lambda p: p.name)]


def start_smtp_sink(
    state_dir: Path, users: dict[str, str], cert_file: Path, key_file: Path
) -> SmtpSink:
    """Start the SMTP sink (``smtp_sink.py``) as a subprocess and wait until it listens."""
    state_dir = state_dir.resolve()
    sink_dir = state_dir / "smtp-sink"
    sink_dir.mkdir(parents=True, exist_ok=True)
    users_file, ready_file = sink_dir / "users.json", sink_dir / "ready.json"
    users_file.write_text(json.dumps(users))
    users_file.chmod(0o600)
    ready_file.unlink(missing_ok=True)
    maildir, log = sink_dir / "Maildir", state_dir / "logs" / "smtp-sink.log"
    args = [sys.executable, str(SINK_SCRIPT), "--maildir", str(maildir)]
    args += ["--cert", str(cert_file), "--key", str(key_file), "--users-file", str(users_file)]
    proc = spawn([*args, "--ready-file", str(ready_file)], log)

    def ready() -> bool:
        alive_or_raise(proc, log, "smtp sink")
        return ready_file.exists()

    try:
        wait_until(ready, 30, "SMTP sink")
    except BaseException:
        stop_process(proc.pid, proc)
        raise
    ports = json.loads(ready_file.read_text())
    return SmtpSink(ports["port"], ports["smtps_port"], maildir, cert_file, proc.pid, proc)
