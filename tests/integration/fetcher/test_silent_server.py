"""A server that accepts the TCP connection and never says a word: its account times out,
backs off and retries (recorded in its health), while two accounts on Dovecot keep
delivering, before and after its timeouts."""

from __future__ import annotations

from functools import partial

import pytest

from deploy.local.servers import Dovecot
from services.fetcher.deps import FetcherDeps
from services.fetcher.supervisor import Backoff, Supervisor
from shared.models.config import GlobalSettings
from shared.runtime import Runtime
from shared.store.account_health import AccountHealthRepo
from tests.integration.fetcher.helpers import account, announced
from tests.support import eventually, make_mail

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("protocol", ["IMAP", "POP3"])
async def test_a_silent_server_never_holds_up_the_other_accounts(
    rt: Runtime, dovecot: Dovecot, silent_port: int, protocol: str
) -> None:
    for user in ("alice", "bob"):
        dovecot.reset_mailbox(user)
    silent = account(dovecot, "alice", name="silent", protocol=protocol, port=silent_port)
    boxes = [account(dovecot, user, name=f"{user}-flows") for user in ("alice", "bob")]
    rt.config = rt.config.model_copy(
        update={
            "accounts": {a.name: a for a in (silent, *boxes)},
            "settings": GlobalSettings(poll_interval_seconds=0.2, connect_timeout_seconds=1),
        }
    )
    health = AccountHealthRepo(rt.store.db)
    supervisor = Supervisor(FetcherDeps.of(rt), backoff=Backoff(base=0.05, cap=0.2))

    async def stored(count: int) -> bool:
        counts = [await rt.store.raw_emails.count(account=a.name) for a in boxes]
        return counts == [count, count]

    async def silent_failures(at_least: int) -> bool:
        return (await health.get(account="silent")).failures >= at_least

    await supervisor.start()
    try:
        for n in (1, 2, 3):
            for user in ("alice", "bob"):
                dovecot.deliver(user, make_mail(subject=f"{user} {n}")[0])
            await eventually(partial(stored, n), what=f"round {n} of mail on both accounts")
            # Between rounds of mail, the silent account keeps timing out and retrying.
            await eventually(partial(silent_failures, n), what=f"silent timeout {n}")
    finally:
        await supervisor.stop()

    state = await health.get(account="silent")
    assert state.last_fetch_at is None and state.last_auth_error is None
    assert state.last_error is not None and "did not answer" in state.last_error
    for box in boxes:
        good = await health.get(account=box.name)
        assert good.failures == 0 and good.last_fetch_at is not None
    assert len(await announced(rt)) == 6
