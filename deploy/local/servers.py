"""Real RabbitMQ, MongoDB, Dovecot and SMTP servers for development and tests.

Everything a run starts lives under one state directory and listens on 127.0.0.1 on ports
picked at run time, so several runs can coexist. Missing Debian packages are installed with
apt-get (needs root). RabbitMQ is the machine's shared broker on port 5672: runs are kept
apart by vhosts, and it is never stopped here.

    python -m deploy.local.servers up --dir .local [--user alice:alicepw ...]
    python -m deploy.local.servers env --dir .local
    python -m deploy.local.servers down --dir .local
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
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
    cmdline_has,
    free_ports,
    listening,
    need_tool,
    pid_alive,
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
    "main",
    "make_cert",
    "start_dovecot",
    "start_mongodb",
    "start_oauth_issuer",
    "start_smtp_sink",
]

RABBIT_PORT = 5672
DEFAULT_BROKER_URL = f"amqp://guest:guest@{HOST}:{RABBIT_PORT}/"
SINK_SCRIPT = Path(__file__).with_name("smtp_sink.py")
STATE_FILE = "servers.json"
ENV_FILE = "env"


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


def start_mongodb(state_dir: Path) -> MongoServer:
    """Start MongoDB: MONGODB_URL if set, else testcontainers with Docker, else SecantusDB."""
    configured = os.environ.get("MONGODB_URL")
    if configured:
        return MongoServer(url=configured)
    if _docker_works():
        # Test-only dependency, needed only where a Docker engine exists.
        from testcontainers.community.mongodb import MongoDbContainer

        container = MongoDbContainer("mongo:7.0").start()
        return MongoServer(
            url=container.get_connection_url(),
            container_id=container.get_wrapped_container().id,
        )
    binary = Path(sys.executable).with_name("secantusd-py")
    if not binary.exists():
        raise RuntimeError(f"{binary} missing: pip install secantusdb (in the test extra)")
    state_dir = state_dir.resolve()
    log, scratch = state_dir / "logs" / "mongodb.log", state_dir / "mongodb-tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    (port,) = free_ports(1)
    args = [str(binary), "--host", HOST, "--port", str(port), "--storage-path", ":memory:"]
    # The in-memory mode keeps scratch files in TMPDIR: keep them in the state directory.
    env = {**os.environ, "TMPDIR": str(scratch)}
    proc = spawn([*args, "--cache-size", "256M"], log, env=env)
    server = MongoServer(url=f"mongodb://{HOST}:{port}/", pid=proc.pid, _proc=proc)

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


# --- command line -------------------------------------------------------------------------


def _running(state: dict[str, object], conf: Path) -> bool:
    sink_pid, mongo_pid = state["sink_pid"], state["mongo_pid"]
    master = conf.parent / "run" / "master.pid"
    return (
        isinstance(sink_pid, int)
        and cmdline_has(sink_pid, SINK_SCRIPT.name)
        and (
            mongo_pid is None or (isinstance(mongo_pid, int) and cmdline_has(mongo_pid, "secantus"))
        )
        and master.exists()
        and pid_alive(int(master.read_text().strip()))
    )


def _down(state_dir: Path) -> None:
    state_file = state_dir / STATE_FILE
    if not state_file.exists():
        return
    state = json.loads(state_file.read_text())
    if cmdline_has(state["sink_pid"], SINK_SCRIPT.name):
        stop_process(state["sink_pid"], None)
    stop_dovecot(Path(state["dovecot_conf"]))
    mongo_pid = state["mongo_pid"]
    # A pid that now belongs to another program is left alone; so is a given MONGODB_URL.
    if mongo_pid is None or cmdline_has(mongo_pid, "secantus"):
        MongoServer(state["mongo_url"], mongo_pid, state["mongo_container_id"]).stop()
    (state_dir / ENV_FILE).unlink(missing_ok=True)
    state_file.unlink()


def _up(state_dir: Path, users: dict[str, str]) -> None:
    state_file = state_dir / STATE_FILE
    if state_file.exists():
        state = json.loads(state_file.read_text())
        if _running(state, Path(state["dovecot_conf"])):
            print(f"already up; settings in {state_dir / ENV_FILE}")
            return
        _down(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    broker_url = ensure_rabbitmq()
    # Ryuk would remove a container as soon as this command exits; `down` removes it instead.
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    stops: list[Callable[[], None]] = []
    try:
        mongo = start_mongodb(state_dir)
        stops.append(mongo.stop)
        dovecot = start_dovecot(state_dir, users)
        stops.append(dovecot.stop)
        sink = start_smtp_sink(state_dir, users, dovecot.cert_file, dovecot.key_file)
    except BaseException:
        for stop in reversed(stops):
            stop()
        raise
    env = {
        "MAILROOM_BROKER_URL": broker_url,
        "MAILROOM_MONGODB_URL": mongo.url,
        "DOVECOT_IMAP_PORT": dovecot.imap_port,
        "DOVECOT_IMAPS_PORT": dovecot.imaps_port,
        "DOVECOT_POP3_PORT": dovecot.pop3_port,
        "DOVECOT_POP3S_PORT": dovecot.pop3s_port,
        "DOVECOT_LMTP_SOCKET": dovecot.lmtp_socket,
        "LOCAL_TLS_CA_FILE": dovecot.cert_file,
        "SINK_SMTP_PORT": sink.port,
        "SINK_SMTPS_PORT": sink.smtps_port,
        "SINK_MAILDIR": sink.maildir,
    }
    lines = [f"export {key}={shlex.quote(str(value))}\n" for key, value in env.items()]
    # The local pipeline needs a key for secrets at rest and a token for the HTTP API; an
    # operator's own values win. They go to the env file only, never to the terminal.
    secrets_ = {
        name: os.environ.get(name) or secrets.token_urlsafe(32)
        for name in ("MAILROOM_SECRET_KEY", "MAILROOM_API_TOKEN")
    }
    secret_lines = [f"export {key}={shlex.quote(value)}\n" for key, value in secrets_.items()]
    env_file = state_dir / ENV_FILE
    env_file.write_text("".join(lines + secret_lines))
    env_file.chmod(0o600)
    state = {
        "sink_pid": sink.pid,
        "dovecot_conf": str(dovecot.conf),
        "mongo_url": mongo.url,
        "mongo_pid": mongo.pid,
        "mongo_container_id": mongo.container_id,
    }
    state_file.write_text(json.dumps(state, indent=2) + "\n")
    print("".join(lines), end="")
    print(f"# MAILROOM_SECRET_KEY and MAILROOM_API_TOKEN: see {env_file}")


def _parse_user(value: str) -> tuple[str, str]:
    user, sep, password = value.partition(":")
    if not (user and sep and password):
        raise argparse.ArgumentTypeError(f"expected USER:PASSWORD, got {value!r}")
    return user, password


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``up``, ``down`` or ``env`` for the servers under ``--dir``."""
    parser = argparse.ArgumentParser(prog="python -m deploy.local.servers", description=__doc__)
    parser.add_argument("command", choices=("up", "down", "env"))
    parser.add_argument("--dir", type=Path, default=Path(".local"), help="state directory")
    parser.add_argument(
        "--user", type=_parse_user, action="append", help="USER:PASSWORD (repeatable)"
    )
    args = parser.parse_args(argv)
    state_dir: Path = args.dir.resolve()
    if args.command == "up":
        _up(state_dir, dict(args.user or [("support", "supportpw")]))
    elif args.command == "down":
        _down(state_dir)
    elif (state_dir / ENV_FILE).exists():
        print((state_dir / ENV_FILE).read_text(), end="")
    else:
        parser.exit(1, f"no servers up in {state_dir}\n")


if __name__ == "__main__":
    main()
