"""IMAP IDLE pushes: with a poll interval of five minutes, mail delivered to Dovecot while the
fetcher idles reaches ``mail.received`` on RabbitMQ anyway, twice in a row (the IDLE is
re-issued after each round). The bound of ``eventually`` is far below the poll interval, so
only the push can deliver in time; no wall time is asserted."""

from __future__ import annotations

from functools import partial

import pytest

from deploy.local.servers import Dovecot
from services.fetcher.deps import FetcherDeps
from services.fetcher.supervisor import Supervisor
from shared.models.config import GlobalSettings
from shared.models.messages import MailReceived
from shared.runtime import Runtime
from tests.integration.fetcher.helpers import account, announced
from tests.support import eventually, make_mail

pytestmark = pytest.mark.integration

POLL_SECONDS = 300.0


def idles(caplog: pytest.LogCaptureFixture, name: str) -> int:
    """How many times the account's trace shows the server accepting IDLE."""
    return sum(
        1
        for r in caplog.records
        if r.name == f"mailroom.trace.{name}" and r.getMessage().startswith("S + ")
    )


async def test_mail_delivered_during_idle_is_announced_without_waiting_for_the_poll(
    rt: Runtime, bob: Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    acc = account(bob, "bob", name="idle-box", debug="yes")
    rt.config = rt.config.model_copy(
        update={
            "accounts": {acc.name: acc},
            "settings": GlobalSettings(poll_interval_seconds=POLL_SECONDS),
        }
    )
    supervisor = Supervisor(FetcherDeps.of(rt))
    received: list[MailReceived] = []

    async def announced_count(count: int) -> bool:
        received.extend(await announced(rt))
        return len(received) >= count

    async def idled(count: int) -> bool:
        return idles(caplog, "idle-box") >= count

    await supervisor.start()
    try:
        for n in (1, 2):
            # Deliver only once the server confirmed the IDLE: then nothing but its push
            # can wake the task before the poll interval.
            await eventually(partial(idled, n), what=f"IDLE number {n}")
            mail, _ = make_mail(subject=f"pushed {n}")
            bob.deliver("bob", mail)
            await eventually(partial(announced_count, n), timeout=20, what=f"mail {n}")
    finally:
        await supervisor.stop()
    assert [m.account for m in received] == ["idle-box", "idle-box"]
    assert len({m.raw_id for m in received}) == 2
