"""A failing ``mailroom`` command answers in one line, names what it tried, and exits non-zero.

Each test runs the real console script against real servers, with one dependency pointed at
a closed port. The time a call takes is printed (the target is under 3 s: a 2 s connect
timeout plus start-up); the assertion is only a guard against a hang.
"""

from __future__ import annotations

import json
import subprocess
import time

from deploy.local._proc import free_ports
from tests.support_cli import cli_env, mailroom

SECRET_KEY = "cli-errors-secret-key"
HANG_GUARD_S = 10


def closed_port() -> int:
    (port,) = free_ports(1)
    return port


def timed(*args: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    begin = time.monotonic()
    result = mailroom(*args, env=env, timeout=60)
    elapsed = time.monotonic() - begin
    print(f"mailroom {' '.join(args)}: exit {result.returncode} after {elapsed:.2f} s")
    return result, elapsed


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single line the command answered with (and nothing else on stderr)."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert " — " in lines[0], lines[0]
    return lines[0]


def test_mongodb_down_names_the_url_and_its_variable(rabbit_url: str) -> None:
    url = f"mongodb://mailroom:db-password-123@127.0.0.1:{closed_port()}/"
    env = cli_env(rabbit_url=rabbit_url, mongo_url=url, database="x", secret_key=SECRET_KEY)

    result, elapsed = timed("cases", "list", env=env)

    line = one_line_error(result)
    assert "MongoDB cannot be reached" in line
    assert url.replace("db-password-123", "***") in line
    assert "MAILROOM_MONGODB_URL" in line
    assert "db-password-123" not in result.stdout + result.stderr
    assert elapsed < HANG_GUARD_S


def test_broker_down_during_a_write_changes_nothing(mongo_url: str, mongo_db_name: str) -> None:
    url = f"amqp://guest:broker-password-123@127.0.0.1:{closed_port()}/"
    env = cli_env(
        rabbit_url=url, mongo_url=mongo_url, database=mongo_db_name, secret_key=SECRET_KEY
    )

    result, elapsed = timed("settings", "set", "settings", "poll_interval_seconds=9", env=env)

    line = one_line_error(result)
    assert "RabbitMQ cannot be reached: connection refused" in line
    assert url.replace("broker-password-123", "***") in line
    assert "MAILROOM_BROKER_URL" in line and "nothing was changed" in line
    assert "broker-password-123" not in result.stdout + result.stderr
    assert elapsed < HANG_GUARD_S
    shown = mailroom("settings", "show", "settings", env=env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["poll_interval_seconds"] != 9


def test_a_template_that_fails_when_rendered_is_refused_in_one_line(
    rabbit_url: str, mongo_url: str, mongo_db_name: str
) -> None:
    env = cli_env(
        rabbit_url=rabbit_url, mongo_url=mongo_url, database=mongo_db_name, secret_key=SECRET_KEY
    )

    result, _ = timed("settings", "set", "templates", "acknowledgement_subject={{ 1/0 }}", env=env)

    line = one_line_error(result)
    assert "acknowledgement_subject" in line and "division by zero" in line
    assert "(mailroom settings set)" in line


def test_debug_shows_the_traceback_then_the_line(rabbit_url: str) -> None:
    url = f"mongodb://127.0.0.1:{closed_port()}/"
    env = cli_env(rabbit_url=rabbit_url, mongo_url=url, database="x", secret_key=SECRET_KEY)

    for args, extra in (
        (("--debug", "failed", "list"), {}),
        (("failed", "list"), {"MAILROOM_DEBUG": "1"}),
    ):
        result, elapsed = timed(*args, env={**env, **extra})
        assert result.returncode != 0
        assert "Traceback (most recent call last)" in result.stderr
        assert result.stderr.splitlines()[-1].startswith("error: MongoDB cannot be reached")
        assert elapsed < HANG_GUARD_S


def test_an_unusable_environment_value_is_named(mongo_url: str, mongo_db_name: str) -> None:
    env = cli_env(
        rabbit_url="amqp://127.0.0.1/", mongo_url=mongo_url, database="no/slash", secret_key="x"
    )

    line = one_line_error(mailroom("cases", "list", env=env))

    assert "MAILROOM_DATABASE" in line and "(the MAILROOM_* environment)" in line
