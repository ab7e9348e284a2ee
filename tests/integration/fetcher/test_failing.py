"""An account that keeps failing (wrong password) is announced on ``account.failing`` once
its retries are spent, while another account's mail keeps flowing."""

from __future__ import annotations

import aio_pika
import pytest
from pydantic import SecretStr

from deploy.local.servers import Dovecot
from services.fetcher.deps import FetcherDeps
from services.fetcher.supervisor import Backoff, Supervisor
from shared.models.config import GlobalSettings
from shared.models.messages import AccountFailing
from shared.runtime import Runtime
from shared.topology import SENDER_ACCOUNT_FAILING
from tests.integration.fetcher.helpers import account, append, tricky_mail
from tests.support import eventually

pytestmark = pytest.mark.integration


async def test_a_failing_account_is_announced_and_does_not_stop_the_others(
    rt: Runtime, dovecot: Dovecot
) -> None:
    dovecot.reset_mailbox("alice")
    append(dovecot, "alice", tricky_mail(1))
    good = account(dovecot, "alice", name="good-box")
    bad = account(dovecot, "bob", name="bad-box", password="not-bobs-password")
    rt.config = rt.config.model_copy(
        update={
            "accounts": {good.name: good, bad.name: bad},
            "settings": GlobalSettings(fetch_retries=1, poll_interval_seconds=0.2),
        }
    )
    url = rt.settings.broker_url
    connection = await aio_pika.connect(
        url.get_secret_value() if isinstance(url, SecretStr) else str(url)
    )
    supervisor = Supervisor(FetcherDeps.of(rt), backoff=Backoff(base=0.01, cap=0.05))
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(SENDER_ACCOUNT_FAILING.name, passive=True)
        await queue.purge()
        await supervisor.start()
        try:
            await eventually(
                lambda: rt.store.raw_emails.count(account="good-box"), what="the good mail"
            )

            async def notice() -> aio_pika.abc.AbstractIncomingMessage | None:
                return await queue.get(no_ack=True, fail=False)

            message = await eventually(notice, what="account.failing")
        finally:
            await supervisor.stop()
        event = AccountFailing.model_validate_json(message.body)
        assert event.account == "bad-box" and event.failures == 2
        assert "login refused for bob@" in event.error
        assert "not-bobs-password" not in event.error
        assert await queue.get(no_ack=True, fail=False) is None  # once per streak
