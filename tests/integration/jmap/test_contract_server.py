"""The contract suite's JMAP server does what the suite expects of it: a fresh empty mailbox
per test, delivery, and what is left with its seen flag."""

from __future__ import annotations

import pytest

from shared.mailbox.jmap import open_jmap_mailbox
from tests.integration.jmap.contract_server import JmapContractServer
from tests.integration.jmap.helpers import mail
from tests.integration.mailbox_contract.contract import Remaining

pytestmark = pytest.mark.integration


async def test_fresh_mailbox_delivery_and_remaining(jmap_server: JmapContractServer) -> None:
    assert await jmap_server.remaining() == []
    await jmap_server.deliver(mail(1))
    await jmap_server.deliver(mail(2))
    box = open_jmap_mailbox(jmap_server.account(keep=True), timeout=30, tokens=None)
    await box.connect()
    listing = await box.list_new(None)
    await box.mark_done(listing.refs[:1], disposal="seen")
    await box.close()
    left = sorted(await jmap_server.remaining(), key=lambda r: r.seen)
    assert [r.seen for r in left] == [False, True]
    assert {r.message_id for r in left} == {"<m1@test>", "<m2@test>"}
    assert all(isinstance(r, Remaining) for r in left)
