"""One log format per process, whatever library logs: ``mailroom run all`` runs as a real
process against the test servers, serves HTTP and handles one mail, and everything it writes to
stderr is checked line by line.

With ``MAILROOM_LOG_JSON`` on, every line is a JSON object naming its service, and the lines
about the mail carry its correlation id (and its account where there is one). Off, every line
is the one human format (no colour codes: stderr is a file, not a terminal).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_processes import BIN, configure_and_send_one, free_port, process_env

pytestmark = pytest.mark.e2e

HUMAN_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) +\S+ \S+: "
)
"""The start of every record in the human format; its continuation lines start with 2 spaces."""
MAIL_MESSAGES = {"mail announced": "fetcher", "mail processed": "processor", "mail sent": "sender"}
"""Records about the one mail, and the service each must name."""


@contextmanager
def run_all(env: dict[str, str], port: int, stderr: Path) -> Iterator[None]:
    """``mailroom run all`` with its stderr (and nothing else) in ``stderr``; stopped cleanly."""
    with stderr.open("wb") as err:
        proc = subprocess.Popen(
            [str(BIN / "mailroom"), "run", "all", "--port", str(port)],
            env={**os.environ, **env, "MAILROOM_INSTANCE_ID": "log-format"},
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        try:
            yield
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
    # uvicorn re-raises SIGTERM after its graceful shutdown.
    assert code in (0, -signal.SIGTERM), code


async def run_once(
    json_lines: bool,
    rabbit_url: str,
    mongo_url: str,
    db: str,
    dovecot: Any,
    smtp_sink: Any,
    tmp: Path,
) -> str:
    """Run the pipeline with one mail and HTTP requests; return everything it wrote to stderr."""
    dovecot.reset_mailbox("bob")
    port = free_port()
    # DEBUG: the libraries (aio_pika, aiormq, pymongo, uvicorn) have their say too.
    env = {**process_env(rabbit_url, mongo_url, db), "MAILROOM_LOG_JSON": str(json_lines).lower()}
    stderr = tmp / "stderr.log"
    with run_all(env, port, stderr):
        # Its own customer: the session's sink still holds the other format's acknowledgement,
        # which must not count as this run's.
        await configure_and_send_one(port, dovecot, smtp_sink, f"logs-{db}@example.org")
    text = stderr.read_text()
    assert text, "the process wrote nothing to stderr"
    return text


async def test_json_lines_every_line_names_its_service_and_mail_lines_their_mail(
    rabbit_url: str,
    mongo_url: str,
    mongo_db_name: str,
    dovecot: Any,
    smtp_sink: Any,
    tmp_path: Path,
) -> None:
    text = await run_once(True, rabbit_url, mongo_url, mongo_db_name, dovecot, smtp_sink, tmp_path)
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"stderr line {number} is not JSON: {line!r}")
    for record in records:
        assert isinstance(record, dict)
        assert record["service"] and record["level"] and record["logger"] and record["time"]
    loggers = {r["logger"] for r in records}
    # Libraries that install their own handlers (uvicorn, FastStream) log through ours.
    assert {"uvicorn.error", "uvicorn.access", "faststream"} <= loggers, loggers
    assert any(logger.startswith(("aiormq", "aio_pika")) for logger in loggers), loggers
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert access and {r["service"] for r in access} == {"config"}
    about_mail = [r for r in records if r["message"] in MAIL_MESSAGES]
    assert sorted(r["message"] for r in about_mail) == sorted(MAIL_MESSAGES), about_mail
    for record in about_mail:
        assert record["service"] == MAIL_MESSAGES[record["message"]], record
    assert len({r.get("correlation_id") for r in about_mail} - {None}) == 1, about_mail
    assert all(r.get("correlation_id") for r in about_mail), about_mail
    for record in about_mail:
        if record["message"] != "mail sent":  # the acknowledgement names no incoming account
            assert record.get("account") == "proc", record


async def test_human_format_is_one_format_without_colour_codes(
    rabbit_url: str,
    mongo_url: str,
    mongo_db_name: str,
    dovecot: Any,
    smtp_sink: Any,
    tmp_path: Path,
) -> None:
    text = await run_once(False, rabbit_url, mongo_url, mongo_db_name, dovecot, smtp_sink, tmp_path)
    assert "\x1b[" not in text
    for number, line in enumerate(text.splitlines(), 1):
        assert HUMAN_LINE.match(line) or line.startswith("  "), f"line {number}: {line!r}"
    starts = [line for line in text.splitlines() if HUMAN_LINE.match(line)]
    assert any(" uvicorn.access: " in line for line in starts)
    assert any(" faststream: " in line for line in starts)
    announced = [line for line in starts if ": mail announced" in line]
    assert len(announced) == 1 and " fetcher " in announced[0], announced
    assert "account=proc" in announced[0] and "correlation_id=" in announced[0]
