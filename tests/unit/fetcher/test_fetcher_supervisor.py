"""Reconcile decisions and task isolation, with a fake mailbox and a fake fetch round."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence

import pytest

from services.fetcher.deps import FetcherDeps
from services.fetcher.service import build
from services.fetcher.supervisor import (
    AccountSpec,
    Backoff,
    Plan,
    Supervisor,
    plan,
    wanted_specs,
)
from shared.errors import Permanent, Transient
from shared.logs import ACCOUNT
from shared.mailbox import (
    Disposal,
    FetchedMail,
    Guard,
    Listing,
    Mailbox,
    MailboxStatus,
    MessageRef,
    unguarded,
)
from shared.models.config import GlobalSettings, IncomingAccount, SystemConfig
from shared.runtime import Runtime
from shared.settings import SharedSettings
from tests.support import eventually


def account(name: str, **fields: object) -> IncomingAccount:
    values: dict[str, object] = {"host": "imap.example.org", "username": name, "password": "pw"}
    return IncomingAccount(name=name, **(values | fields))


def config(*accounts: IncomingAccount, timeout: float = 30.0) -> SystemConfig:
    return SystemConfig(
        accounts={a.name: a for a in accounts},
        settings=GlobalSettings(connect_timeout_seconds=timeout, poll_interval_seconds=0.2),
    )


# -- decisions -----------------------------------------------------------------------------


def test_enabled_accounts_are_wanted_with_the_connect_timeout() -> None:
    wanted = wanted_specs(config(account("a"), account("b", enabled=False), timeout=12))
    assert wanted == {"a": AccountSpec(account("a"), 12)}


def test_plan_starts_new_stops_gone_and_restarts_changed() -> None:
    running = {
        "same": AccountSpec(account("same"), 30),
        "gone": AccountSpec(account("gone"), 30),
        "pw": AccountSpec(account("pw"), 30),
        "slow": AccountSpec(account("slow"), 30),
    }
    wanted = {
        "same": AccountSpec(account("same"), 30),
        "new": AccountSpec(account("new"), 30),
        "pw": AccountSpec(account("pw", password="changed"), 30),
        "slow": AccountSpec(account("slow"), 60),
    }
    assert plan(running, wanted) == Plan(
        start=frozenset({"new"}), stop=frozenset({"gone"}), restart=frozenset({"pw", "slow"})
    )
    assert plan(wanted, wanted) == Plan()


def test_backoff_grows_to_the_cap_with_jitter() -> None:
    backoff = Backoff(base=1.0, cap=60.0, jitter=0.5)
    for failures, ceiling in [(1, 1.0), (2, 2.0), (4, 8.0), (7, 60.0), (1000, 60.0)]:
        delay = backoff.delay(failures)
        assert ceiling / 2 <= delay <= ceiling
    assert 30.0 <= backoff.delay(1, permanent=True) <= 60.0


# -- the supervisor's tasks --------------------------------------------------------------


class FakeMailbox:
    """A Mailbox with nothing in it that counts connects and closes."""

    def __init__(self) -> None:
        self.connects = 0
        self.closes = 0
        self.mails: list[FetchedMail] = []

    async def connect(self) -> MailboxStatus:
        self.connects += 1
        return MailboxStatus(exists=0)

    async def list_new(self, cursor: str | None) -> Listing:
        return Listing(refs=[], twins_possible=False, cursor_after=lambda done: None)

    async def fetch(
        self, refs: Sequence[MessageRef], *, max_size: int | None = None
    ) -> AsyncIterator[FetchedMail]:
        for mail in self.mails:
            yield mail

    async def mark_done(
        self, refs: Sequence[MessageRef], *, disposal: Disposal, guard: Guard = unguarded
    ) -> None:
        return None

    async def wait_for_news(self, timeout: float) -> bool:
        await asyncio.sleep(0.01)
        return True

    async def close(self) -> None:
        self.closes += 1


class Harness:
    """A supervisor whose accounts named ``broken*`` fail every round."""

    def __init__(self) -> None:
        self.rt = Runtime(SharedSettings(secret_key="unit-test-key"))
        self.mailboxes: dict[str, list[FakeMailbox]] = {}
        self.rounds: dict[str, int] = {}
        self.supervisor = Supervisor(
            FetcherDeps.of(self.rt),
            mailbox_factory=self.open,
            fetch=self.fetch,
            backoff=Backoff(base=0.001, cap=0.005),
        )

    def open(self, account: IncomingAccount, timeout: float) -> Mailbox:
        mailbox = FakeMailbox()
        self.mailboxes.setdefault(account.name, []).append(mailbox)
        return mailbox

    async def fetch(self, deps: FetcherDeps, account: IncomingAccount, mailbox: Mailbox) -> int:
        self.rounds[account.name] = self.rounds.get(account.name, 0) + 1
        await mailbox.connect()
        if account.name.startswith("broken"):
            raise (Permanent if "perm" in account.name else Transient)("server says no")
        if account.name.startswith("buggy"):
            raise RuntimeError("a bug")
        return 0

    async def opened(self, name: str, count: int) -> bool:
        return len(self.mailboxes.get(name, [])) == count

    async def rounds_of(self, name: str, at_least: int) -> bool:
        return self.rounds.get(name, 0) >= at_least

    async def wait_for_rounds(self, name: str, at_least: int) -> None:
        await eventually(lambda: self.rounds_of(name, at_least), timeout=5, what=f"{name} rounds")


async def test_one_failing_account_never_stops_another(caplog: pytest.LogCaptureFixture) -> None:
    h = Harness()
    h.rt.config = config(account("ok"), account("broken"), account("broken-perm"), account("buggy"))
    await h.supervisor.start()
    try:
        for name in ("ok", "broken", "buggy"):
            await h.wait_for_rounds(name, 5)
        assert set(h.supervisor.running) == {"ok", "broken", "broken-perm", "buggy"}
        # A failed round drops the connection; the healthy account keeps its session.
        assert h.mailboxes["broken"][0].closes >= 4
        assert h.mailboxes["ok"][0].closes == 0
    finally:
        await h.supervisor.stop()
    assert h.supervisor.running == {}
    assert all(boxes[-1].closes >= 1 for boxes in h.mailboxes.values())
    assert "server says no" in caplog.text and "a bug" in caplog.text


async def test_reconcile_follows_the_configuration() -> None:
    h = Harness()
    await h.supervisor.reconcile(config(account("a")))
    assert h.supervisor.running == {}  # inert until started

    h.rt.config = config(account("a"), account("b"))
    await h.supervisor.start()
    try:
        assert set(h.supervisor.running) == {"a", "b"}
        await h.wait_for_rounds("a", 1)
        first_a = h.mailboxes["a"][0]

        await h.supervisor.reconcile(config(account("a"), account("b", enabled=False)))
        assert set(h.supervisor.running) == {"a"}
        assert h.mailboxes["b"][0].closes == 1
        assert h.mailboxes["a"] == [first_a]  # untouched

        await h.supervisor.reconcile(config(account("a", folder="Support"), account("c")))
        assert set(h.supervisor.running) == {"a", "c"}
        assert first_a.closes == 1  # restarted with the new settings
        await eventually(lambda: h.opened("a", 2), timeout=5, what="a's new mailbox")
        assert h.supervisor.running["a"].account.folder == "Support"
    finally:
        await h.supervisor.stop()
    await h.supervisor.reconcile(config(account("a")))
    assert h.supervisor.running == {}


def test_build_gives_the_fetcher_service() -> None:
    rt = Runtime(SharedSettings(secret_key="unit-test-key"))
    service = build(rt)
    assert service.name == "fetcher" and service.routers == []
    assert service.start is not None and service.stop is not None


def test_importing_the_app_reads_no_settings() -> None:
    env = {**os.environ, "MAILROOM_API_PORT": "not-a-port"}
    code = "import services.fetcher.app as a; print(callable(a.create_app))"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


async def test_every_line_an_account_task_logs_names_its_account() -> None:
    h = Harness()
    seen: dict[str, str | None] = {}
    fetch = h.fetch

    async def fetch_noting_context(
        deps: FetcherDeps, account: IncomingAccount, mailbox: Mailbox
    ) -> int:
        seen[account.name] = ACCOUNT.get()
        return await fetch(deps, account, mailbox)

    h.supervisor = Supervisor(
        FetcherDeps.of(h.rt),
        mailbox_factory=h.open,
        fetch=fetch_noting_context,
        backoff=Backoff(0.001, 0.005),
    )
    h.rt.config = config(account("alpha"), account("beta"))
    await h.supervisor.start()
    try:
        await h.wait_for_rounds("alpha", 1)
        await h.wait_for_rounds("beta", 1)
    finally:
        await h.supervisor.stop()
    assert seen == {"alpha": "alpha", "beta": "beta"}
