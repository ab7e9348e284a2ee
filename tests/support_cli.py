"""Running the real ``mailroom`` console script against the test servers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shared.settings import SharedSettings
from tests.secret_scan import SCAN


def mailroom(
    *args: str, env: dict[str, str], stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``mailroom ARGS`` from this venv with the given MAILROOM_* environment."""
    exe = Path(sys.executable).with_name("mailroom")
    for line in (stdin or "").splitlines():
        # Secrets reach the CLI on stdin only: whatever comes that way must not come out
        # (short throwaway values like "pw" would be found in any text).
        if len(line) >= 6:
            SCAN.secret("secret given to the CLI on stdin", line)
    result = subprocess.run(
        [str(exe), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **env},
        check=False,
    )
    SCAN.record(f"the output of `mailroom {' '.join(args[:2])}`", result.stdout + result.stderr)
    return result


def cli_env(*, rabbit_url: str, mongo_url: str, database: str, secret_key: str) -> dict[str, str]:
    """The process settings a CLI call needs."""
    return {
        "MAILROOM_BROKER_URL": rabbit_url,
        "MAILROOM_MONGODB_URL": mongo_url,
        "MAILROOM_DATABASE": database,
        "MAILROOM_SECRET_KEY": secret_key,
        "MAILROOM_LOG_JSON": "false",
    }


def settings_cli_env(settings: SharedSettings) -> dict[str, str]:
    """The process settings a CLI call needs to reach what ``settings`` (a test's Runtime) uses."""
    assert settings.secret_key is not None
    return cli_env(
        rabbit_url=settings.broker_url.get_secret_value(),
        mongo_url=settings.mongodb_url.get_secret_value(),
        database=settings.database,
        secret_key=settings.secret_key.get_secret_value(),
    )
