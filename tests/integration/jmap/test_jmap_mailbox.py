"""The JMAP adapter against a real Cyrus 3.6: start positions, each disposal, the cursor across
a server restart, the resync after cannotCalculateChanges, big mail, push, and refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from deploy.local.cyrus import Cyrus
from shared.errors import Permanent
from shared.mailbox.base import FetchedMail, Listing, MessageRef
from shared.mailbox.jmap import JmapMailbox, open_jmap_mailbox
from shared.mailbox.jmap import mailbox as jmap_mailbox
from shared.models.config import IncomingAccount
from tests.integration.jmap.helpers import emails, fresh_user, import_mail, jmap_account, mail

pytestmark = pytest.mark.integration


@pytest.fixture
def user(cyrus: Cyrus) -> tuple[str, str]:
    return fresh_user(cyrus)


@pytest.fixture
async def box(cyrus: Cyrus, user: tuple[str, str]) -> AsyncIterator[JmapMailbox]:
    mailbox = open_jmap_mailbox(jmap_account(cyrus, *user), timeout=30, tokens=None)
    await mailbox.connect()
    yield mailbox
    await mailbox.close()


async def fetched(box: JmapMailbox, refs: Sequence[MessageRef], **kw: int) -> list[FetchedMail]:
    return [m async for m in box.fetch(refs, **kw)]


def message_ids(mails: list[FetchedMail]) -> list[str]:
    out = []
    for m in mails:
        line = next(x for x in m.data.split(b"\r\n") if x.startswith(b"Message-ID:"))
        out.append(line.split(b":", 1)[1].strip().decode())
    return out


def done(listing: Listing) -> str:
    cursor = listing.cursor_after({r.source_key for r in listing.refs})
    assert cursor is not None
    return cursor


async def test_all_lists_the_folder_oldest_first_and_fetches_raw_bytes(
    cyrus: Cyrus, user: tuple[str, str], box: JmapMailbox
) -> None:
    for n, day in ((1, "03"), (2, "01"), (3, "02")):
        import_mail(cyrus, user[0], mail(n), f"2026-11-{day}T10:00:00Z")
    listing = await box.list_new(None)
    mails = await fetched(box, listing.refs)
    assert message_ids(mails) == ["<m2@test>", "<m3@test>", "<m1@test>"]
    assert all(
        m.complete and m.data.endswith(b"body 2\r\n") is (i == 0) for i, m in enumerate(mails)
    )
    first = listing.refs[0].source_key
    # The state covers every listed mail: not storable before all are done.
    assert listing.cursor_after({first}) is None
    assert listing.cursor_after({r.source_key for r in listing.refs}) is not None


async def test_new_skips_what_is_there_and_takes_what_comes(cyrus: Cyrus) -> None:
    name, password = fresh_user(cyrus)
    cyrus.deliver(name, mail(1))
    box = open_jmap_mailbox(
        jmap_account(cyrus, name, password, start_position="new"), timeout=30, tokens=None
    )
    await box.connect()
    listing = await box.list_new(None)
    assert listing.refs == []
    cyrus.deliver(name, mail(2))
    later = await box.list_new(done(listing))
    assert message_ids(await fetched(box, later.refs)) == ["<m2@test>"]
    await box.close()


async def test_since_takes_mail_received_on_or_after_the_date(cyrus: Cyrus) -> None:
    name, password = fresh_user(cyrus)
    import_mail(cyrus, name, mail(1), "2026-10-31T23:59:59Z")
    import_mail(cyrus, name, mail(2), "2026-11-01T00:00:00Z")
    import_mail(cyrus, name, mail(3), "2026-11-05T08:00:00Z")
    account = jmap_account(cyrus, name, password, start_position="since", start_date="2026-11-01")
    box = open_jmap_mailbox(account, timeout=30, tokens=None)
    await box.connect()
    listing = await box.list_new(None)
    assert message_ids(await fetched(box, listing.refs)) == ["<m2@test>", "<m3@test>"]
    await box.close()


async def test_seen_keeps_mail_flagged_and_it_is_not_listed_again(
    cyrus: Cyrus, user: tuple[str, str], box: JmapMailbox
) -> None:
    cyrus.deliver(user[0], mail(1))
    listing = await box.list_new(None)
    await box.mark_done(listing.refs, disposal="seen")
    cyrus.deliver(user[0], mail(2))
    later = await box.list_new(done(listing))
    assert message_ids(await fetched(box, later.refs)) == ["<m2@test>"]
    left = {tuple(e["messageId"]): "$seen" in e["keywords"] for e in emails(cyrus, user[0])}
    assert left == {("m1@test",): True, ("m2@test",): False}


async def test_move_puts_mail_into_move_to_folder(cyrus: Cyrus) -> None:
    name, password = fresh_user(cyrus)
    fields = jmap_account(cyrus, name, password).model_dump()
    account = IncomingAccount.model_validate(
        {**fields, "after_fetch": "move", "move_to_folder": "Archive"}
    )
    box = open_jmap_mailbox(account, timeout=30, tokens=None)
    await box.connect()
    cyrus.deliver(name, mail(1))
    listing = await box.list_new(None)
    await box.mark_done(listing.refs, disposal="move")
    assert (await box.list_new(done(listing))).refs == []
    (moved,) = emails(cyrus, name)
    archive = next(
        m["id"] for m in cyrus.call(name, "Mailbox/get", {})["list"] if m["role"] == "archive"
    )
    assert moved["mailboxIds"] == {archive: True}
    await box.close()


async def test_delete_destroys_mail(cyrus: Cyrus, user: tuple[str, str], box: JmapMailbox) -> None:
    import_mail(cyrus, user[0], mail(1), "2026-11-01T10:00:00Z")
    import_mail(cyrus, user[0], mail(2), "2026-11-02T10:00:00Z")
    listing = await box.list_new(None)
    await box.mark_done(listing.refs[:1], disposal="delete")
    # Destroyed already (a repeated round): not an error.
    await box.mark_done(listing.refs[:1], disposal="delete")
    assert [e["messageId"] for e in emails(cyrus, user[0])] == [["m2@test"]]


async def test_cursor_resumes_after_a_server_restart(cyrus: Cyrus) -> None:
    name, password = fresh_user(cyrus)
    account = jmap_account(cyrus, name, password)
    box = open_jmap_mailbox(account, timeout=30, tokens=None)
    await box.connect()
    cyrus.deliver(name, mail(1))
    listing = await box.list_new(None)
    await box.mark_done(listing.refs, disposal="seen")
    cursor = done(listing)
    await box.close()
    cyrus.restart()
    cyrus.deliver(name, mail(2))
    again = open_jmap_mailbox(account, timeout=30, tokens=None)
    await again.connect()
    later = await again.list_new(cursor)
    assert message_ids(await fetched(again, later.refs)) == ["<m2@test>"]
    await again.close()


async def test_cannot_calculate_changes_resyncs_without_losing_mail(
    cyrus: Cyrus, user: tuple[str, str], box: JmapMailbox
) -> None:
    import_mail(cyrus, user[0], mail(1), "2026-11-01T10:00:00Z")
    import_mail(cyrus, user[0], mail(2), "2026-11-02T10:00:00Z")
    listing = await box.list_new(None)
    first, second = listing.refs
    await box.mark_done([second], disposal="delete")
    cursor = done(listing)
    import_mail(cyrus, user[0], mail(3), "2026-11-03T10:00:00Z")
    # Purging the deleted mail makes the stored state too old to compute changes from.
    cyrus.expire()
    resync = await box.list_new(cursor)
    # Everything still in the folder, under the same ids: the fetcher skips m1 by its key.
    assert resync.refs[0].source_key == first.source_key
    assert message_ids(await fetched(box, resync.refs)) == ["<m1@test>", "<m3@test>"]
    assert not resync.twins_possible


async def test_a_resync_keeps_to_the_start_position(cyrus: Cyrus) -> None:
    # Mail that was there when a "new" account started stays untouched, also when the
    # server forgets the stored state and the folder is listed again.
    name, password = fresh_user(cyrus)
    import_mail(cyrus, name, mail(1), "2026-11-01T10:00:00Z")
    account = jmap_account(cyrus, name, password, start_position="new")
    box = open_jmap_mailbox(account, timeout=30, tokens=None)
    await box.connect()
    cursor = done(await box.list_new(None))
    cyrus.deliver(name, mail(2))
    listing = await box.list_new(cursor)
    await box.mark_done(listing.refs, disposal="delete")
    cyrus.deliver(name, mail(3))
    cyrus.expire()
    resync = await box.list_new(done(listing))
    assert message_ids(await fetched(box, resync.refs)) == ["<m3@test>"]
    await box.close()


async def test_paged_queries_and_changes_list_everything(
    cyrus: Cyrus, user: tuple[str, str], box: JmapMailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jmap_mailbox, "PAGE", 2)
    monkeypatch.setattr(jmap_mailbox, "MAX_CHANGES", 2)
    for n in range(5):
        import_mail(cyrus, user[0], mail(n), f"2026-11-0{n + 1}T10:00:00Z")
    listing = await box.list_new(None)
    assert len(listing.refs) == 5
    cyrus.deliver(user[0], *(mail(n) for n in range(5, 10)))
    later = await box.list_new(done(listing))
    assert sorted(message_ids(await fetched(box, later.refs))) == [
        f"<m{n}@test>" for n in range(5, 10)
    ]


async def test_big_mail_streams_whole_and_over_the_limit_only_its_header(
    cyrus: Cyrus, user: tuple[str, str], box: JmapMailbox
) -> None:
    raw = mail(1, size=12 * 1024 * 1024)
    cyrus.deliver(user[0], raw)
    listing = await box.list_new(None)
    (whole,) = await fetched(box, listing.refs)
    # LMTP delivery adds Return-Path and Received above the mail.
    assert whole.complete and whole.data.endswith(raw[raw.index(b"\r\n\r\n") :])
    (stub,) = await fetched(box, listing.refs, max_size=1024 * 1024)
    assert not stub.complete
    assert stub.data.endswith(b"\r\n\r\n") and b"Message-ID: <m1@test>" in stub.data
    assert len(stub.data) < 64 * 1024


async def test_waiting_reports_new_mail_and_times_out_without(
    cyrus: Cyrus, user: tuple[str, str], box: JmapMailbox
) -> None:
    listing = await box.list_new(None)
    assert not await box.wait_for_news(1.5)
    cyrus.deliver(user[0], mail(1))
    assert await box.wait_for_news(30)
    assert len((await box.list_new(done(listing))).refs) == 1


async def test_a_closed_mailbox_connects_again(
    cyrus: Cyrus, user: tuple[str, str], box: JmapMailbox
) -> None:
    await box.close()
    cyrus.deliver(user[0], mail(1))
    status = await box.connect()
    assert status.exists == 1
    assert len((await box.list_new(None)).refs) == 1


async def test_wrong_password_is_permanent_and_never_shown(cyrus: Cyrus) -> None:
    name, _ = fresh_user(cyrus)
    box = open_jmap_mailbox(
        jmap_account(cyrus, name, "Wrong-Password-123"), timeout=30, tokens=None
    )
    with pytest.raises(Permanent) as refused:
        await box.connect()
    assert name in str(refused.value) and "Wrong-Password-123" not in str(refused.value)
    await box.close()


async def test_missing_folder_is_permanent(cyrus: Cyrus, user: tuple[str, str]) -> None:
    box = open_jmap_mailbox(jmap_account(cyrus, *user, folder="Nope"), timeout=30, tokens=None)
    with pytest.raises(Permanent, match="Nope"):
        await box.connect()
    await box.close()
