"""The local default: what ``make run``, ``make stop`` and ``make reset`` start, stop and wipe.

    python -m deploy.local.stack run   [--dir .local]   # servers, pipeline, preset; "ready"
    python -m deploy.local.stack stop  [--dir .local]   # everything run started
    python -m deploy.local.stack reset [--dir .local]   # stop, then remove all local data
    python -m deploy.local.stack up|down|env [--dir .local]   # the servers alone

Everything lives under the state directory: MongoDB data (``mongodb/``), the local mailboxes
(``mail/``), the SMTP sink's mail (``smtp-sink/``), the secret key and API token
(``secrets.json``, kept across restarts: passwords stored encrypted with the key stay
readable), logs, certificates and ``env``, the settings a shell loads with ``. .local/env``.

The MongoDB stand-in and a RabbitMQ vhost of this directory's own are the local default;
``MAILROOM_MONGODB_URL`` (or ``MONGODB_URL``) and ``MAILROOM_BROKER_URL`` set by the user are
used as given instead, and then nothing is preconfigured. Values a shell took from our own
env file (it names its directory in ``MAILROOM_LOCAL_STATE``) do not count as the user's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shlex
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy.local import pipeline, preset
from deploy.local._proc import HOST, cmdline_has, listening, stop_process, tool
from deploy.local._proc import run as run_command
from deploy.local.servers import (
    SINK_SCRIPT,
    MongoServer,
    create_vhost,
    ensure_rabbitmq,
    start_dovecot,
    start_mongodb,
    start_smtp_sink,
    stop_dovecot,
)

STATE_FILE = "servers.json"
ENV_FILE = "env"
SECRETS_FILE = "secrets.json"
PORTS_FILE = "ports.json"
MARKER = "MAILROOM_LOCAL_STATE"
OWN_URLS = ("MAILROOM_BROKER_URL", "MAILROOM_MONGODB_URL", "MONGODB_URL")
# The process settings our env file sets (the rest of it names the local servers).
WRITTEN = (
    "MAILROOM_BROKER_URL",
    "MAILROOM_MONGODB_URL",
    "MAILROOM_SECRET_KEY",
    "MAILROOM_API_TOKEN",
)
DEFAULT_USER = ("support", "supportpw")
MAIL_DOMAIN = "example.org"
DEFAULT_API_PORT = 8025


class StackError(RuntimeError):
    """A refusal the command line prints as one line and exits 1 with."""


@dataclass(frozen=True)
class Servers:
    """What ``up`` started or found running, and the settings that reach it."""

    env: dict[str, str]
    local_default: bool


# --- servers ------------------------------------------------------------------------------


def forget_own_env(state_dir: Path) -> None:
    """Drop MAILROOM_* values a shell loaded from this directory's env file: they describe
    the last run, not servers the user chose (a stale MongoDB port would be taken as one)."""
    if os.environ.get(MARKER) != str(state_dir):
        return
    for key in (*WRITTEN, MARKER):
        os.environ.pop(key, None)


def is_local_default() -> bool:
    """Whether the local default is used: the user named no broker or MongoDB of their own."""
    return not any(os.environ.get(name) for name in OWN_URLS)


def vhost_name(state_dir: Path) -> str:
    """The RabbitMQ vhost of one state directory: runs from two checkouts never share mail."""
    return "mailroom-local-" + hashlib.sha256(str(state_dir).encode()).hexdigest()[:10]


def _json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_private(path: Path, text: str) -> None:
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)


def _secrets(state_dir: Path) -> dict[str, str]:
    """The secret key and API token: the user's own values win, else the ones kept from an
    earlier start, else new ones (kept for the next start)."""
    kept = {k: str(v) for k, v in _json(state_dir / SECRETS_FILE).items()}
    values = {
        name: os.environ.get(name) or kept.get(name) or secrets.token_urlsafe(32)
        for name in ("MAILROOM_SECRET_KEY", "MAILROOM_API_TOKEN")
    }
    if values != kept:
        _write_private(state_dir / SECRETS_FILE, json.dumps(values, indent=2) + "\n")
    return values


def _servers_running(state: dict[str, object]) -> bool:
    sink_pid, mongo_pid, conf = state.get("sink_pid"), state.get("mongo_pid"), state.get("conf")
    if not (isinstance(sink_pid, int) and cmdline_has(sink_pid, SINK_SCRIPT.name)):
        return False
    if mongo_pid is not None and not (
        isinstance(mongo_pid, int) and cmdline_has(mongo_pid, "secantus")
    ):
        return False
    return _dovecot_pid(Path(str(conf))) is not None


def _dovecot_pid(conf: Path) -> int | None:
    """The pid of the Dovecot master configured by ``conf``, if it runs."""
    try:
        pid = int((conf.parent / "run" / "master.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if cmdline_has(pid, "dovecot") else None


def up(state_dir: Path, users: dict[str, str]) -> Servers:
    """Start the servers (or find them running) and write the env file."""
    state_dir.mkdir(parents=True, exist_ok=True)
    state_dir.chmod(0o755)  # Dovecot's mail uid must reach mail/ when run as root
    forget_own_env(state_dir)
    local_default = is_local_default()
    state = _json(state_dir / STATE_FILE)
    if state and _servers_running(state):
        env = {str(k): str(v) for k, v in dict(state["env"]).items()}  # type: ignore[call-overload]
        return Servers(env={**env, **_secrets(state_dir)}, local_default=bool(state["local"]))
    down(state_dir)
    broker_url = os.environ.get("MAILROOM_BROKER_URL") or ""
    if not broker_url:
        ensure_rabbitmq()
        broker_url = create_vhost(vhost_name(state_dir))
    stops: list[Callable[[], None]] = []
    try:
        mongo = _mongodb(state_dir)
        stops.append(mongo.stop)
        dovecot = start_dovecot(state_dir, users)
        stops.append(dovecot.stop)
        sink = start_smtp_sink(state_dir, users, dovecot.cert_file, dovecot.key_file)
    except BaseException:
        for stop in reversed(stops):
            stop()
        raise
    user, password = next(iter(users.items()))
    env = {
        "MAILROOM_BROKER_URL": broker_url,
        "MAILROOM_MONGODB_URL": mongo.url,
        "DOVECOT_IMAP_PORT": str(dovecot.imap_port),
        "DOVECOT_IMAPS_PORT": str(dovecot.imaps_port),
        "DOVECOT_POP3_PORT": str(dovecot.pop3_port),
        "DOVECOT_POP3S_PORT": str(dovecot.pop3s_port),
        "DOVECOT_LMTP_SOCKET": str(dovecot.lmtp_socket),
        "LOCAL_TLS_CA_FILE": str(dovecot.cert_file),
        "LOCAL_MAILBOX": f"{user}@{MAIL_DOMAIN}",
        "LOCAL_MAILBOX_USER": user,
        "LOCAL_MAILBOX_PASSWORD": password,
        "SINK_SMTP_PORT": str(sink.port),
        "SINK_SMTPS_PORT": str(sink.smtps_port),
        "SINK_MAILDIR": str(sink.maildir),
    }
    state = {
        "sink_pid": sink.pid,
        "conf": str(dovecot.conf),
        "mongo_url": mongo.url,
        "mongo_pid": mongo.pid,
        "mongo_container_id": mongo.container_id,
        "local": local_default,
        "env": env,
    }
    (state_dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
    servers = Servers(env={**env, **_secrets(state_dir)}, local_default=local_default)
    write_env(state_dir, servers.env)
    return servers


def _mongodb(state_dir: Path) -> MongoServer:
    """The user's MongoDB as given, else the stand-in on its data directory (same port as
    last time when free, so a shell that loaded the env file before keeps working)."""
    configured = os.environ.get("MAILROOM_MONGODB_URL")
    if configured:
        return MongoServer(url=configured)
    ports = _json(state_dir / PORTS_FILE)
    previous = ports.get("mongodb")
    mongo = start_mongodb(
        state_dir,
        data_dir=state_dir / "mongodb",
        port=previous if isinstance(previous, int) else None,
    )
    if mongo.pid is not None:
        port = int(mongo.url.rsplit(":", 1)[1].split("/")[0])
        (state_dir / PORTS_FILE).write_text(json.dumps({**ports, "mongodb": port}) + "\n")
    return mongo


def write_env(state_dir: Path, env: dict[str, str]) -> None:
    """Write the env file a shell loads with ``. .local/env`` (0600: it holds the token)."""
    lines = [f"export {key}={shlex.quote(value)}\n" for key, value in env.items()]
    lines.append(f"export {MARKER}={shlex.quote(str(state_dir))}\n")
    # The `mailroom` command of this installation, once, however often the file is loaded.
    bin_dir = shlex.quote(str(Path(sys.executable).parent))
    lines.append(f'case ":$PATH:" in *:{bin_dir}:*) ;; *) export PATH={bin_dir}:"$PATH" ;; esac\n')
    _write_private(state_dir / ENV_FILE, "".join(lines))


def down(state_dir: Path) -> list[str]:
    """Stop the servers ``up`` started; return what was stopped."""
    state = _json(state_dir / STATE_FILE)
    stopped: list[str] = []
    if not state:
        return stopped
    sink_pid = state.get("sink_pid")
    if isinstance(sink_pid, int) and cmdline_has(sink_pid, SINK_SCRIPT.name):
        stop_process(sink_pid, None)
        stopped.append(f"SMTP sink (pid {sink_pid})")
    conf = Path(str(state.get("conf")))
    master = _dovecot_pid(conf)
    if master is not None:
        stop_dovecot(conf)
        stopped.append(f"Dovecot (pid {master})")
    mongo_pid, container = state.get("mongo_pid"), state.get("mongo_container_id")
    # A pid that now belongs to another program is left alone; so is a given MongoDB URL.
    if isinstance(mongo_pid, int) and cmdline_has(mongo_pid, "secantus"):
        MongoServer("", mongo_pid).stop()
        stopped.append(f"MongoDB stand-in (pid {mongo_pid})")
    elif isinstance(container, str):
        MongoServer("", None, container).stop()
        stopped.append(f"MongoDB container {container[:12]}")
    (state_dir / ENV_FILE).unlink(missing_ok=True)
    (state_dir / STATE_FILE).unlink(missing_ok=True)
    return stopped


# --- run, stop, reset ---------------------------------------------------------------------


def _api_address() -> tuple[str, int]:
    host = os.environ.get("MAILROOM_HTTP_HOST") or os.environ.get("MAILROOM_API_HOST") or HOST
    port = os.environ.get("MAILROOM_HTTP_PORT") or os.environ.get("MAILROOM_API_PORT")
    return host, int(port) if port else DEFAULT_API_PORT


def run(state_dir: Path, users: dict[str, str]) -> str:
    """Start everything (refusing when a pipeline already runs); return the ready block."""
    running = pipeline.running(state_dir)
    if running is not None:
        raise StackError(
            f"already running (pid {running.pid}): API {running.api_url}; `make stop` stops it"
        )
    forget_own_env(state_dir)
    host, port = _api_address()
    api_url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"  # noqa: S104
    if listening(port):
        raise StackError(
            f"port {port} is taken by another program; set MAILROOM_API_PORT to a free port"
        )
    servers = up(state_dir, users)
    env = {**servers.env, "MAILROOM_API_PORT": str(port)}
    write_env(state_dir, env)
    pipeline.start(state_dir, {**os.environ, **env}, api_url)
    applied = preset.Applied([])
    if servers.local_default:
        api = preset.Api(api_url, env["MAILROOM_API_TOKEN"])
        applied = preset.apply(api, _preset_servers(env), state_dir)
    return ready_block(state_dir, env, api_url, servers.local_default, applied)


def _preset_servers(env: dict[str, str]) -> preset.LocalServers:
    return preset.LocalServers(
        imap_port=int(env["DOVECOT_IMAP_PORT"]),
        smtp_port=int(env["SINK_SMTP_PORT"]),
        ca_file=Path(env["LOCAL_TLS_CA_FILE"]),
        address=env["LOCAL_MAILBOX"],
        username=env["LOCAL_MAILBOX_USER"],
        password=env["LOCAL_MAILBOX_PASSWORD"],
    )


def _shown(state_dir: Path) -> str:
    """The state directory as the user typed it, relative to the working directory if inside."""
    try:
        return str(state_dir.relative_to(Path.cwd()))
    except ValueError:
        return str(state_dir)


def ready_block(
    state_dir: Path,
    env: dict[str, str],
    api_url: str,
    local_default: bool,
    applied: preset.Applied,
) -> str:
    """What ``make run`` ends with: where everything is and what to type next."""
    where = _shown(state_dir)
    lines = [f"configured: {change}" for change in applied.changes]
    if not local_default:
        lines.append(
            "your own MongoDB/RabbitMQ: nothing was preconfigured; add an account with "
            "`mailroom accounts add` (see README)"
        )
    lines += [
        "",
        "Mailroom is ready.",
        f"  console   {api_url}/console/  {_console_login(applied)}",
        f"  API       {api_url}  (OpenAPI: {api_url}/docs)",
        f"  token     MAILROOM_API_TOKEN in {where}/env",
        f"  mailbox   {env['LOCAL_MAILBOX']} on the local Dovecot, login "
        f"{env['LOCAL_MAILBOX_USER']} (password: LOCAL_MAILBOX_PASSWORD in {where}/env)",
        f"  data      {where}/ (kept across `make stop`; `make reset` wipes it)",
        f"  logs      {where}/logs/mailroom.log",
        "Next:",
        f"  . {where}/env",
        '  mailroom demo send --subject "My printer is on fire"',
        "  mailroom cases list",
        "  mailroom demo sent",
        "`make stop` stops everything.",
    ]
    return "\n".join(lines)


def _console_login(applied: preset.Applied) -> str:
    admin = preset.CONSOLE_ADMIN
    if applied.admin_password is not None:
        return (
            f"user {admin}, password {applied.admin_password}  (shown this once; "
            f"`mailroom users reset-password {admin}` sets another)"
        )
    return f"(sign in as a console user; `mailroom users reset-password {admin}` if forgotten)"


def stop(state_dir: Path) -> list[str]:
    """Stop the pipeline and the servers; return what was stopped."""
    stopped = []
    gone = pipeline.stop(state_dir)
    if gone is not None:
        stopped.append(f"mailroom run all (pid {gone.pid}, API {gone.api_url})")
    return stopped + down(state_dir)


DATA = {
    "mongodb": "MongoDB data: cases, stored mails, failed mails, settings, accounts",
    "mail": "the local mailboxes (Dovecot)",
    "smtp-sink": "mail the local SMTP sink received",
    SECRETS_FILE: "the secret key and API token",
}
# Everything else the local default keeps in the state directory. Only these are removed: the
# directory may hold other tools' files (e.g. a container image build).
OTHERS = (
    "logs",
    "tls",
    "dovecot",
    "mongodb-tmp",
    ENV_FILE,
    STATE_FILE,
    PORTS_FILE,
    preset.DONE_FILE,
    pipeline.PID_FILE,
)


def reset(state_dir: Path) -> list[str]:
    """Stop everything, then remove the local data; return what was stopped and removed."""
    forget_own_env(state_dir)
    done = [f"stopped {what}" for what in stop(state_dir)]
    rabbitmqctl = tool("rabbitmqctl")
    if is_local_default() and rabbitmqctl is not None:
        # Queued mail of this directory's pipeline lives in its vhost.
        try:
            run_command([rabbitmqctl, "delete_vhost", vhost_name(state_dir)], 60)
            done.append(f"removed RabbitMQ vhost {vhost_name(state_dir)} (queued messages)")
        except RuntimeError:
            pass  # there was none
    where = _shown(state_dir)
    for name, what in DATA.items():
        if (state_dir / name).exists():
            _remove(state_dir / name)
            done.append(f"removed {where}/{name} ({what})")
    others = [name for name in OTHERS if (state_dir / name).exists()]
    for name in others:
        _remove(state_dir / name)
    if others:
        done.append(f"removed {', '.join(others)} in {where} (logs, certificates, configuration)")
    if state_dir.exists() and not any(state_dir.iterdir()):
        state_dir.rmdir()
    return done or [f"nothing to remove in {where}"]


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


# --- command line -------------------------------------------------------------------------


def _parse_user(value: str) -> tuple[str, str]:
    user, sep, password = value.partition(":")
    if not (user and sep and password):
        raise argparse.ArgumentTypeError(f"expected USER:PASSWORD, got {value!r}")
    return user, password


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: run, stop, reset, up, down or env for the state directory ``--dir``."""
    parser = argparse.ArgumentParser(prog="python -m deploy.local.stack", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("command", choices=("run", "stop", "reset", "up", "down", "env"))
    parser.add_argument("--dir", type=Path, default=Path(".local"), help="state directory")
    parser.add_argument(
        "--user", type=_parse_user, action="append", help="mailbox USER:PASSWORD (repeatable)"
    )
    args = parser.parse_args(argv)
    state_dir: Path = args.dir.resolve()
    users = dict(args.user or [DEFAULT_USER])
    try:
        if args.command == "run":
            print(run(state_dir, users))
        elif args.command in ("stop", "down", "reset"):
            action = {"stop": stop, "down": down, "reset": reset}[args.command]
            lines = action(state_dir)
            if args.command != "reset":
                lines = [f"stopped {what}" for what in lines]
            print("\n".join(lines) or "nothing was running")
        elif args.command == "up":
            up(state_dir, users)
            print(f"servers up; settings in {_shown(state_dir)}/{ENV_FILE}")
        elif (state_dir / ENV_FILE).exists():
            print((state_dir / ENV_FILE).read_text(), end="")
        else:
            raise StackError(f"no servers up in {state_dir}")
    except (StackError, TimeoutError) as exc:
        parser.exit(1, f"error: {exc}\n")
    except RuntimeError as exc:
        log = _shown(state_dir) + "/logs"
        parser.exit(1, f"error: {exc}\n(logs in {log}; `make stop` stops what was started)\n")


if __name__ == "__main__":
    main()
