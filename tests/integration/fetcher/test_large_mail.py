"""Large mail: above 8 MiB the bytes go to GridFS and come back exact; above the maximum
size a stub (headers and the reason) is stored and announced, and the original stays."""

from __future__ import annotations

import pytest

from deploy.local.servers import Dovecot
from services.fetcher.deps import FetcherDeps
from services.fetcher.ingest import fetch_once
from shared.models.config import GlobalSettings
from shared.runtime import Runtime
from tests.integration.fetcher.conftest import MailboxMaker
from tests.integration.fetcher.helpers import account, announced, append, server_flags
from tests.support import make_mail

pytestmark = pytest.mark.integration


def big_mail(n: int, size: int) -> tuple[bytes, str]:
    line = b"0123456789abcdef" * 4 + b"\r\n"
    raw, mid = make_mail(subject=f"big {n}", message_id=f"<big-{n}@example.org>")
    return raw + line * (size // len(line)), mid


async def test_a_mail_above_8_mib_is_kept_in_gridfs_byte_for_byte(
    rt: Runtime, bob: Dovecot, open_mailbox: MailboxMaker
) -> None:
    raw, mid = big_mail(1, 12 * 1024 * 1024)
    append(bob, "bob", raw)
    acc = account(bob, "bob", after_fetch="delete")
    assert await fetch_once(FetcherDeps.of(rt), acc, open_mailbox(acc)) == 1
    (record,) = await rt.store.raw_emails.recent(account=acc.name)
    assert record.message_id == mid and record.size == len(raw) and record.truncated is None
    assert await rt.store.raw_emails.data(raw_id=record.id) == raw
    assert [m.raw_id for m in await announced(rt)] == [record.id]


@pytest.mark.parametrize("protocol", ["IMAP", "POP3"])
async def test_a_mail_above_the_maximum_is_stored_as_a_stub_and_left_on_the_server(
    rt: Runtime, bob: Dovecot, open_mailbox: MailboxMaker, protocol: str
) -> None:
    rt.config = rt.config.model_copy(
        update={"settings": GlobalSettings(max_mail_size_mb=0.5, delete_read_messages=True)}
    )
    raw, mid = big_mail(2, 600 * 1024)
    small, small_mid = make_mail(subject="small")
    append(bob, "bob", raw, small)
    acc = account(bob, "bob", protocol=protocol)
    mailbox = open_mailbox(acc)
    assert await fetch_once(FetcherDeps.of(rt), acc, mailbox) == 2
    await mailbox.close()

    stored = {r.message_id: r for r in await rt.store.raw_emails.recent(account=acc.name)}
    stub = stored[mid]
    assert stub.truncated and "exceeds the maximum size" in stub.truncated
    data = await rt.store.raw_emails.data(raw_id=stub.id)
    assert b"Subject: big 2" in data and b"X-Mailroom-Truncated:" in data
    assert b"only its headers were stored" in data and len(data) < 4096
    assert stored[small_mid].truncated is None
    assert len(await announced(rt)) == 2

    # The original is still there (IMAP: \Seen); the small one was deleted.
    assert list(server_flags(bob, "bob").values()) == ["" if acc.is_pop3 else "\\Seen"]
    assert await fetch_once(FetcherDeps.of(rt), acc, mailbox) == 0  # and is not announced again
    assert await announced(rt) == []
