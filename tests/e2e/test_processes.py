"""Each service as its own process (``faststream run services.<name>.app:app``) and all in
one (``mailroom run all``), configured over real HTTP, with one mail flowing through.

Every process answers /healthz, /readyz and /metrics over HTTP, and its metrics count the
mail. The processes' logs are kept and scanned: no configured password may appear in them,
and the JSON lines of fetching, processing and sending the mail share one correlation id.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import eventually, make_mail

pytestmark = pytest.mark.e2e

TOKEN = "process-test-token-0123456789"
IMAP_PASSWORD = "bobpw"
SMTP_PASSWORD = "alicepw"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def processes(
    commands: dict[str, list[str]],
    env: dict[str, str],
    logs: Path,
    own_env: dict[str, dict[str, str]] | None = None,
) -> Iterator[None]:
    """Start each command with its log file (and ``own_env[name]``); stop them with SIGTERM
    and check they stop cleanly."""
    running: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, command in commands.items():
            log = (logs / f"{name}.log").open("wb")
            running[name] = subprocess.Popen(
                command,
                env={
                    **os.environ,
                    **env,
                    "MAILROOM_INSTANCE_ID": f"proc-{name}",
                    **(own_env or {}).get(name, {}),
                },
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        yield
    finally:
        for proc in running.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = {}
        for name, proc in running.items():
            try:
                codes[name] = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = proc.wait()
    # uvicorn (the config API) re-raises SIGTERM after its graceful shutdown.
    assert all(code in (0, -signal.SIGTERM) for code in codes.values()), codes
    for name in running:
        assert "shut down gracefully" in (logs / f"{name}.log").read_text(), name


async def configure_and_send_one(
    api_port: int, dovecot: Any, smtp_sink: Any, customer: str
) -> None:
    """Set everything up over HTTP, deliver one mail, wait for its acknowledgement."""
    base = f"http://127.0.0.1:{api_port}"
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    ) as api:

        async def ready() -> bool:
            try:
                return (await api.get("/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(ready, timeout=60, what="the config service to be ready")
        for method, path, body in (
            ("PATCH", "/settings/settings", {"poll_interval_seconds": 0.3}),
            (
                "PUT",
                "/outgoing",
                {
                    "host": "127.0.0.1",
                    "port": smtp_sink.smtps_port,
                    "security": "tls",
                    "username": "alice",
                    "password": SMTP_PASSWORD,
                    "ca_file": str(dovecot.cert_file),
                },
            ),
            (
                "POST",
                "/accounts",
                {
                    "name": "proc",
                    "protocol": "IMAP",
                    "host": "127.0.0.1",
                    "port": dovecot.imap_port,
                    "ca_file": str(dovecot.cert_file),  # security auto: STARTTLS
                    "username": "bob",
                    "password": IMAP_PASSWORD,
                    "after_fetch": "delete",
                },
            ),
        ):
            response = await api.request(method, path, json=body)
            assert response.status_code < 300, response.text
    mail, _ = make_mail(subject="Process test", sender=customer)
    dovecot.deliver("bob", mail)

    async def acknowledged() -> bool:
        return any(customer in str(m.get("X-Sink-Rcpt-To", "")) for m in smtp_sink.messages())

    await eventually(acknowledged, timeout=60, what="the acknowledgement at the sink")


def process_env(rabbit_url: str, mongo_url: str, db: str) -> dict[str, str]:
    return {
        "MAILROOM_BROKER_URL": rabbit_url,
        "MAILROOM_MONGODB_URL": mongo_url,
        "MAILROOM_DATABASE": db,
        "MAILROOM_SECRET_KEY": "process-test-secret-key",
        "MAILROOM_API_TOKEN": TOKEN,
        "MAILROOM_LOG_LEVEL": "DEBUG",
    }


def series(text: str, name: str, labels: str) -> float | None:
    """The value of one series in Prometheus text, or None when it is absent."""
    for line in text.splitlines():
        if line.startswith(f"{name}{{{labels}}} "):
            return float(line.rsplit(" ", 1)[1])
    return None


async def assert_probes(port: int, counted: dict[str, str]) -> None:
    """The process on ``port`` is live and ready, and its metrics count one mail
    (``counted``: metric name → labels of the series that must be 1)."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "ready"

        async def counted_once() -> str | None:
            # The sink may hold the mail a moment before the sender records its outcome.
            response = await http.get("/metrics")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain")
            text = response.text
            done = all(series(text, name, labels) == 1 for name, labels in counted.items())
            return text if done else None

        text = await eventually(counted_once, what=f"one mail counted in /metrics on {port}")
    assert series(text, "mailroom_queue_messages", 'queue="processor.inbound"') is not None


def json_lines(log: Path) -> list[dict[str, Any]]:
    """The JSON log records of a process (uvicorn's own lines are plain text)."""
    records = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


def assert_one_correlation_id(logs: Path) -> None:
    """Fetching, processing and sending the one mail are logged under one correlation id."""
    fetched = [r for r in json_lines(logs / "fetcher.log") if r["message"] == "mail announced"]
    assert len(fetched) == 1, fetched
    correlation_id = fetched[0]["correlation_id"]
    processed = [r for r in json_lines(logs / "processor.log") if r["message"] == "mail processed"]
    sent = [r for r in json_lines(logs / "sender.log") if r["message"] == "mail sent"]
    assert [r.get("correlation_id") for r in processed] == [correlation_id]
    assert [r.get("correlation_id") for r in sent] == [correlation_id]


def assert_no_secret_in_logs(logs: Path) -> None:
    for log in logs.glob("*.log"):
        text = log.read_text(errors="replace")
        for secret in (IMAP_PASSWORD, SMTP_PASSWORD, TOKEN, "process-test-secret-key"):
            assert secret not in text, f"{secret!r} leaked into {log.name}"


async def test_each_service_in_its_own_process(
    rabbit_url: str,
    mongo_url: str,
    mongo_db_name: str,
    dovecot: Any,
    smtp_sink: Any,
    tmp_path: Path,
) -> None:
    dovecot.reset_mailbox("bob")
    port = free_port()
    workers = {name: free_port() for name in ("fetcher", "processor", "sender")}
    commands = {
        name: [str(BIN / "faststream"), "run", f"services.{name}.app:app"] for name in workers
    }
    commands["config"] = [
        str(BIN / "faststream"),
        "run",
        "services.config.app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    own_env = {name: {"MAILROOM_HTTP_PORT": str(p)} for name, p in workers.items()}
    env = process_env(rabbit_url, mongo_url, mongo_db_name)
    with processes(commands, env, tmp_path, own_env):
        await configure_and_send_one(port, dovecot, smtp_sink, "solo@example.org")
        await asyncio.sleep(0.5)
        await assert_probes(workers["fetcher"], {"mailroom_mails_fetched_total": 'account="proc"'})
        await assert_probes(
            workers["processor"], {"mailroom_mails_processed_total": 'outcome="new_case"'}
        )
        await assert_probes(workers["sender"], {"mailroom_mails_sent_total": 'outcome="sent"'})
        await assert_probes(port, {})
    assert_no_secret_in_logs(tmp_path)
    assert_one_correlation_id(tmp_path)


async def test_all_services_in_one_process(
    rabbit_url: str,
    mongo_url: str,
    mongo_db_name: str,
    dovecot: Any,
    smtp_sink: Any,
    tmp_path: Path,
) -> None:
    dovecot.reset_mailbox("bob")
    port = free_port()
    commands = {"all": [str(BIN / "mailroom"), "run", "all", "--port", str(port)]}
    with processes(commands, process_env(rabbit_url, mongo_url, mongo_db_name), tmp_path):
        await configure_and_send_one(port, dovecot, smtp_sink, "together@example.org")
        # One HTTP server for the whole process: its metrics count every service's work.
        await assert_probes(
            port,
            {
                "mailroom_mails_fetched_total": 'account="proc"',
                "mailroom_mails_processed_total": 'outcome="new_case"',
                "mailroom_mails_sent_total": 'outcome="sent"',
            },
        )
    assert_no_secret_in_logs(tmp_path)
