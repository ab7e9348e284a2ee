"""The README's quick start as a new user types it, on the code path ``make run`` takes.

``python -m deploy.local.stack run|stop|reset`` (what ``make run``, ``make stop`` and
``make reset`` call) on a private state directory, so the repository's ``.local`` is never
touched; the ``mailroom`` commands are the README's own lines, with the env file loaded as
``. .local/env`` would. Then: stop, start again, and everything is still there.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from pymongo import MongoClient

from deploy.local._proc import pid_alive
from deploy.local.pipeline import PID_FILE
from deploy.local.stack import vhost_name
from tests.secret_scan import SCAN
from tests.support_cli import mailroom

pytestmark = [pytest.mark.e2e, pytest.mark.long]

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")

# The README's quick start, in order; each line must appear there as written.
SEND = 'mailroom demo send --subject "My printer is on fire"'
LIST = "mailroom cases list"
SENT = "mailroom demo sent"
REPLY = (
    'mailroom demo send --subject "Re: My printer is on fire [Case#10001]" --body "Still burning."'
)
SHOW = "mailroom cases show 10001"
QUICK_START = (SEND, LIST, SENT, REPLY, SHOW)


def until(probe: Callable[[], T | None], what: str, timeout: float = 60) -> T:
    """Poll ``probe`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.3)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class QuickStart:
    """One user's local default in a private state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        # A user's shell: none of the test session's MAILROOM_* settings, a free API port.
        self.base_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("MAILROOM_") and k != "MONGODB_URL"
        }
        self.base_env["MAILROOM_API_PORT"] = str(free_port())

    def make(self, command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """``make run|stop|reset``: the stack module on this state directory."""
        result = subprocess.run(
            [sys.executable, "-m", "deploy.local.stack", command, "--dir", str(self.state_dir)],
            cwd=ROOT,
            env=self.base_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        SCAN.record(f"the output of `make {command}`", result.stdout + result.stderr)
        return result

    def env(self) -> dict[str, str]:
        """What ``. .local/env`` exports (the PATH line aside)."""
        values = {}
        for line in (self.state_dir / "env").read_text().splitlines():
            if line.startswith("export "):
                key, _, value = line.removeprefix("export ").partition("=")
                (values[key],) = shlex.split(value)
        for key in ("MAILROOM_SECRET_KEY", "MAILROOM_API_TOKEN"):
            SCAN.secret(f"{key} of the quick start", values[key])
        SCAN.secret("the local mailbox password", values["LOCAL_MAILBOX_PASSWORD"])
        return {**self.base_env, **values, "MAILROOM_LOG_JSON": "false"}

    def log_problems(self) -> str:
        """The services' warnings and errors, for a failure's message: the fixture removes
        the state directory, logs and all, when the test ends."""
        log = self.state_dir / "logs" / "mailroom.log"
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        problems = [line for line in lines if '"WARNING"' in line or '"ERROR"' in line]
        return "\nservice log, warnings and errors:\n" + "\n".join(problems[-30:])

    def type(self, line: str) -> subprocess.CompletedProcess[str]:
        """Run one README line (``mailroom …``) in a shell that loaded the env file."""
        args = shlex.split(line)
        assert args[0] == "mailroom"
        return mailroom(*args[1:], env=self.env())

    def json(self, line: str) -> Any:
        result = self.type(line + " --json")
        assert result.returncode == 0, result.stdout + result.stderr
        return json.loads(result.stdout)


@pytest.fixture
def quick_start() -> Iterator[QuickStart]:
    # World-searchable (mkdtemp is 0700): Dovecot's mail uid must reach the mailboxes.
    state_dir = Path(tempfile.mkdtemp(prefix="mailroom-quickstart-"))
    state_dir.chmod(0o755)
    user = QuickStart(state_dir)
    yield user
    # Another tool's files beside ours (e.g. a container image build in .local/image).
    (state_dir / "image").mkdir()
    (state_dir / "image" / "rootfs.tar").write_bytes(b"not ours")
    reset = user.make("reset")
    assert reset.returncode == 0, reset.stderr
    assert f"removed {state_dir}/mongodb (MongoDB data" in reset.stdout, reset.stdout
    assert [p.name for p in state_dir.iterdir()] == ["image"], "reset removes only its own"
    shutil.rmtree(state_dir)


def _readme_quick_start() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## On a fresh machine", 1)[1].split("\n## ", 1)[0]
    return section


def _ready(user: QuickStart, result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr + user.log_problems()
    assert "Mailroom is ready." in result.stdout, result.stdout
    match = re.search(r"API\s+(http://\S+)", result.stdout)
    assert match, result.stdout
    return match.group(1)


def _cases(user: QuickStart) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = user.json(LIST)
    return cases


def _messages(user: QuickStart, number: int) -> list[dict[str, Any]]:
    result = user.type(SHOW.replace("10001", str(number)))
    assert result.returncode == 0, result.stderr
    messages: list[dict[str, Any]] = json.loads(result.stdout)
    return messages


class Peek:
    """Cheap probes for the waits (one CLI call costs seconds): the local MongoDB, the sink's
    Maildir and the API. What the user sees is then checked once, with the README's line."""

    def __init__(self, env: dict[str, str], api_url: str) -> None:
        self._mongo: MongoClient[dict[str, Any]] = MongoClient(env["MAILROOM_MONGODB_URL"])
        self._db = self._mongo["mailroom"]
        self._maildir = Path(env["SINK_MAILDIR"])
        self.api = httpx.Client(
            base_url=api_url, headers={"Authorization": f"Bearer {env['MAILROOM_API_TOKEN']}"}
        )

    def close(self) -> None:
        self._mongo.close()
        self.api.close()

    def messages(self, number: int) -> int:
        return self._db["messages"].count_documents({"case_number": number})

    def case(self, subject: str) -> bool:
        return self._db["cases"].count_documents({"subject": subject}) > 0

    def sink_subjects(self) -> list[str]:
        files = [p for sub in ("new", "cur") for p in (self._maildir / sub).glob("*")]
        return [
            line
            for p in files
            for line in p.read_text(errors="replace").splitlines()
            if line.startswith("Subject:")
        ]

    def failed(self) -> list[dict[str, Any]]:
        response = self.api.get("/failed")
        assert response.status_code == 200, response.text
        rows: list[dict[str, Any]] = response.json()
        return rows


def _console_sign_in(api_url: str, ready: str) -> None:
    """The first admin the ready block printed signs in to the console."""
    found = re.search(r"console\s+(\S+)\s+user (\S+), password (\S+)", ready)
    assert found, ready
    console, name, password = found.groups()
    assert console == f"{api_url}/console/"
    with httpx.Client(base_url=api_url) as browser:
        signed = browser.post(
            "/console/signin", data={"username": name, "password": password, "next": "/console/"}
        )
        assert signed.status_code == 303, signed.text
        assert browser.get("/console/health").status_code == 200


def test_quick_start_as_written_then_stop_and_start_again(quick_start: QuickStart) -> None:
    user = quick_start
    readme = _readme_quick_start()
    for line in (*QUICK_START, ". .local/env", "make run", "make stop", "make reset"):
        assert line in readme, f"the README's quick start no longer says {line!r}"

    first = user.make("run")
    api_url = _ready(user, first)
    assert api_url == f"http://127.0.0.1:{user.base_env['MAILROOM_API_PORT']}"
    _console_sign_in(api_url, first.stdout)
    again = user.make("run", timeout=5)  # a second run says so at once, and fails
    assert again.returncode != 0
    assert "already running" in again.stderr and api_url in again.stderr, again.stderr
    peek = Peek(user.env(), api_url)
    try:
        failed_id = _first_run(user, peek)
    finally:
        peek.close()

    pid = json.loads((user.state_dir / PID_FILE).read_text())["pid"]
    stopped = user.make("stop")
    assert stopped.returncode == 0, stopped.stderr
    for what in ("mailroom run all", "SMTP sink", "Dovecot", "MongoDB stand-in"):
        assert what in stopped.stdout, stopped.stdout
    assert not pid_alive(pid), "make stop left `mailroom run all` running"
    assert not (user.state_dir / PID_FILE).exists()

    restarted = user.make("run")
    assert _ready(user, restarted) == api_url
    assert ", password " not in restarted.stdout  # shown once, at the first start only
    assert [c["number"] for c in _cases(user)] == [10001]
    assert len(_messages(user, 10001)) == 3
    assert [a["name"] for a in user.json("mailroom accounts list")] == ["local"]
    assert [m["id"] for m in user.json("mailroom failed list")] == [failed_id]
    # The restarted pipeline still fetches and matches (the servers have new ports).
    peek = Peek(user.env(), api_url)
    try:
        second = user.type('mailroom demo send --subject "Re: again [Case#10001]"')
        assert second.returncode == 0, second.stderr
        until(lambda: peek.messages(10001) == 4, "the second reply to join case 10001")
    finally:
        peek.close()
    assert vhost_name(user.state_dir) in user.env()["MAILROOM_BROKER_URL"]


def _first_run(user: QuickStart, peek: Peek) -> str:
    """The README's loop, then one mail for the desk; returns the failed mail's id."""
    sent = user.type(SEND)
    assert sent.returncode == 0, sent.stderr
    assert "delivered" in sent.stdout
    until(lambda: peek.case("My printer is on fire"), "the new case")
    listed = user.type(LIST)
    assert listed.returncode == 0, listed.stderr
    assert "10001" in listed.stdout and "My printer is on fire" in listed.stdout, listed.stdout

    until(lambda: any("[Case#10001]" in s for s in peek.sink_subjects()), "the acknowledgement")
    shown = user.type(SENT)
    assert shown.returncode == 0, shown.stderr
    assert "[Case#10001]" in shown.stdout and "customer@example.org" in shown.stdout, shown.stdout

    assert user.type(REPLY).returncode == 0
    until(lambda: peek.messages(10001) == 3, "the reply to join case 10001")
    messages = _messages(user, 10001)  # SHOW, as JSON
    assert [m["direction"] for m in messages] == ["in", "out", "in"]
    assert messages[1]["subject"] == "My printer is on fire [Case#10001]"
    assert messages[1]["from"][0]["address"] == "support@example.org"
    assert messages[-1]["subject"].startswith("Re: My printer")
    assert messages[-1]["rule"] == "subject_pattern"
    missing = user.type("mailroom cases show 4242")
    assert missing.returncode == 1 and "no case 4242" in missing.stderr, missing
    assert missing.stdout == ""

    # A mail the desk keeps: refused by the reject_subject script.
    scripts = peek.api.get("/settings/processor").json()["incoming_scripts"]
    for script in scripts:
        script["enabled"] = script["enabled"] or script["name"] == "reject_subject"
    body = {"incoming_scripts": scripts, "reject_subject_pattern": "(?i)quarantine"}
    response = peek.api.patch("/settings/processor", json=body)
    assert response.status_code < 300, response.text
    send = user.type('mailroom demo send --subject "Please quarantine this"')
    assert send.returncode == 0, send.stderr
    (failed,) = until(peek.failed, "the refused mail on the failed-mail desk")
    failed_id: str = failed["id"]
    return failed_id
