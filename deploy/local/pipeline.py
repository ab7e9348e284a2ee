"""The ``mailroom run all`` process of the local default, recorded in a pid file.

``make run`` starts it in its own session with its output in ``logs/mailroom.log`` and returns
once the API answers ``/readyz``; ``make stop`` finds it again by the pid file (checking the
pid still belongs to a ``mailroom`` process before signalling it).
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from deploy.local._proc import alive_or_raise, cmdline_has, spawn, stop_process, wait_until

PID_FILE = "mailroom.pid"
LOG_FILE = Path("logs") / "mailroom.log"
# What ``mailroom run all`` has on its command line whatever the interpreter's path.
MARKER = "mailroom"
READY_TIMEOUT = 120.0


@dataclass(frozen=True)
class Pipeline:
    """A running pipeline: its pid and the URL its HTTP API listens on."""

    pid: int
    api_url: str


def running(state_dir: Path) -> Pipeline | None:
    """The pipeline the pid file names, if that process still runs."""
    try:
        record = json.loads((state_dir / PID_FILE).read_text())
        pipeline = Pipeline(pid=int(record["pid"]), api_url=str(record["api_url"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pipeline if cmdline_has(pipeline.pid, MARKER) else None


def _ready(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/readyz", timeout=2) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start(state_dir: Path, env: dict[str, str], api_url: str) -> Pipeline:
    """Start ``mailroom run all`` with ``env``, record its pid, wait until it is ready.

    Raises with the log's tail when the process exits or is not ready in time (it is
    stopped then).
    """
    log = state_dir / LOG_FILE
    mailroom = Path(sys.executable).with_name("mailroom")
    proc = spawn([str(mailroom), "run", "all"], log, env=env)
    pipeline = Pipeline(pid=proc.pid, api_url=api_url)
    (state_dir / PID_FILE).write_text(json.dumps({"pid": proc.pid, "api_url": api_url}) + "\n")

    def ready() -> bool:
        alive_or_raise(proc, log, "mailroom run all")
        return _ready(api_url)

    try:
        wait_until(ready, READY_TIMEOUT, f"mailroom run all (API {api_url}/readyz)")
    except BaseException:
        stop(state_dir, proc)
        raise
    return pipeline


def stop(state_dir: Path, proc: subprocess.Popen[bytes] | None = None) -> Pipeline | None:
    """Stop the recorded pipeline (SIGTERM, then SIGKILL after 30 s); return what was stopped."""
    pipeline = running(state_dir)
    if pipeline is not None:
        # A graceful stop lets the fetcher hand its accounts back and in-flight mail finish.
        stop_process(pipeline.pid, proc, timeout=30)
    (state_dir / PID_FILE).unlink(missing_ok=True)
    return pipeline
