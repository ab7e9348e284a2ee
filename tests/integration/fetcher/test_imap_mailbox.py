"""ImapMailbox against the real Dovecot: IMAP and IMAPS, exact bytes, flags, deletion,
IDLE, and every failure translated into Transient or Permanent without the password."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import pytest

from deploy.local.servers import Dovecot
from shared.errors import LeaseLost, Permanent, Transient
from shared.mailbox import ImapMailbox
from shared.models.cursors import ImapCursor
from tests.integration.fetcher.conftest import MailboxMaker
from tests.integration.fetcher.helpers import account, append, server_flags, tricky_mail
from tests.support import make_mail

pytestmark = pytest.mark.integration


def at(uidvalidity: int | None, mark: int) -> str:
    """The IMAP cursor for ``mark`` under ``uidvalidity``."""
    assert uidvalidity is not None
    return ImapCursor(uidvalidity=uidvalidity, mark=mark).dump()


@pytest.fixture
def alice(dovecot: Dovecot) -> Dovecot:
    """Dovecot with alice's INBOX emptied."""
    dovecot.reset_mailbox("alice")
    return dovecot


@pytest.mark.parametrize("protocol", ["IMAP", "IMAPS"])
async def test_login_select_list_and_fetch_exact_bytes(
    alice: Dovecot, open_mailbox: MailboxMaker, protocol: str
) -> None:
    mails = [tricky_mail(n) for n in range(3)]
    append(alice, "alice", *mails)
    mailbox = open_mailbox(account(alice, protocol=protocol))

    status = await mailbox.connect()
    assert status.uidvalidity and status.exists == 3 and status.supports_idle

    listing = await mailbox.list_new(None)
    refs = listing.refs
    assert [r.handle for r in refs] == [1, 2, 3] and not listing.twins_possible
    assert [r.source_key for r in refs] == [f"{status.uidvalidity}:{u}" for u in (1, 2, 3)]
    fetched = [m async for m in mailbox.fetch(refs)]
    assert [m.data for m in fetched] == mails
    assert [m.ref.size for m in fetched] == [len(m) for m in mails]
    assert server_flags(alice, "alice") == {1: "", 2: "", 3: ""}  # BODY.PEEK: not \Seen

    # The cursor moves over the contiguous run of done mails only.
    after = listing.cursor_after({refs[0].source_key, refs[2].source_key})
    assert after == at(status.uidvalidity, 1)
    after = listing.cursor_after({r.source_key for r in refs})
    assert after == at(status.uidvalidity, 3)
    # "UID SEARCH UID 4:*" still answers UID 3; the adapter drops it.
    assert (await mailbox.list_new(after)).refs == []
    assert [r.handle for r in (await mailbox.list_new(at(status.uidvalidity, 2))).refs] == [3]


async def test_connect_again_reuses_the_session_and_sees_new_mail(
    alice: Dovecot, open_mailbox: MailboxMaker
) -> None:
    append(alice, "alice", tricky_mail(1))
    mailbox = open_mailbox(account(alice))
    first = await mailbox.connect()
    append(alice, "alice", tricky_mail(2))
    again = await mailbox.connect()
    assert again.uidvalidity == first.uidvalidity and again.exists == 2
    assert [r.handle for r in (await mailbox.list_new(at(first.uidvalidity, 1))).refs] == [2]


async def test_a_session_the_server_dropped_between_rounds_is_reopened_quietly(
    alice: Dovecot, open_mailbox: MailboxMaker
) -> None:
    mailbox = open_mailbox(account(alice))
    await mailbox.connect()
    alice.reset_mailbox("alice")  # kicks the session while nothing is waiting on it
    append(alice, "alice", tricky_mail(1))
    assert (await mailbox.connect()).exists == 1


async def test_large_mails_come_in_several_fetches_with_exact_bytes(
    alice: Dovecot, open_mailbox: MailboxMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.mailbox import imap

    monkeypatch.setattr(imap, "FETCH_MAX_BYTES", 300_000)
    line = bytes(range(32, 256)) + b"\r\n"  # 8-bit, but no NUL or bare CR/LF (RFC 5322)
    big = [tricky_mail(n) + line * 900 for n in range(4)]  # ~200 KB each
    append(alice, "alice", *big)
    mailbox = open_mailbox(account(alice))
    await mailbox.connect()
    fetched = [m async for m in mailbox.fetch((await mailbox.list_new(None)).refs)]
    assert [m.data for m in fetched] == big


async def test_mark_done_touches_exactly_the_given_mails(
    alice: Dovecot, open_mailbox: MailboxMaker
) -> None:
    append(alice, "alice", *(tricky_mail(n) for n in range(5)))
    mailbox = open_mailbox(account(alice))
    await mailbox.connect()
    refs = (await mailbox.list_new(None)).refs

    await mailbox.mark_done([refs[0], refs[2]], disposal="seen")
    flags = server_flags(alice, "alice")
    assert [uid for uid, f in flags.items() if "\\Seen" in f] == [1, 3]

    await mailbox.mark_done([refs[1], refs[3]], disposal="delete")
    assert sorted(server_flags(alice, "alice")) == [1, 3, 5]
    assert [r.handle for r in (await mailbox.list_new(None)).refs] == [1, 3, 5]


async def test_a_guard_refusing_between_store_and_expunge_stops_the_expunge(
    alice: Dovecot, open_mailbox: MailboxMaker
) -> None:
    """The fetch round's fence guards each command: a process paused past its lease between
    UID STORE and UID EXPUNGE never sends the EXPUNGE when it resumes."""
    append(alice, "alice", tricky_mail(1), tricky_mail(2))
    mailbox = open_mailbox(account(alice))
    await mailbox.connect()
    refs = (await mailbox.list_new(None)).refs
    guarded = 0

    async def lost_after_the_first_command() -> None:
        nonlocal guarded
        guarded += 1
        if guarded > 1:
            raise LeaseLost("alice: lease token 1 no longer held")

    with pytest.raises(LeaseLost):
        await mailbox.mark_done(refs, disposal="delete", guard=lost_after_the_first_command)
    assert guarded == 2
    assert server_flags(alice, "alice") == {1: "\\Deleted", 2: "\\Deleted"}


async def test_idle_wakes_on_new_mail_and_times_out_quietly(
    alice: Dovecot, open_mailbox: MailboxMaker
) -> None:
    mailbox = open_mailbox(account(alice))
    await mailbox.connect()
    started = time.monotonic()
    assert await mailbox.wait_for_news(0.5) is False
    assert 0.4 < time.monotonic() - started < 3

    waiting = asyncio.create_task(mailbox.wait_for_news(20))
    await asyncio.sleep(0.3)
    mail, _ = make_mail(subject="during IDLE")
    await asyncio.to_thread(alice.deliver, "alice", mail)
    started = time.monotonic()
    assert await asyncio.wait_for(waiting, 15) is True
    assert time.monotonic() - started < 5
    # The session is usable after IDLE.
    status = await mailbox.connect()
    assert status.exists == 1
    assert len((await mailbox.list_new(None)).refs) == 1


async def test_a_dropped_connection_fails_fast_and_the_next_connect_reopens(
    alice: Dovecot, open_mailbox: MailboxMaker
) -> None:
    append(alice, "alice", tricky_mail(1))
    mailbox = open_mailbox(account(alice), timeout=30)
    await mailbox.connect()
    idle = asyncio.create_task(mailbox.wait_for_news(60))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    alice.reset_mailbox("alice")  # kicks every session of alice
    with pytest.raises(Transient, match="closed the connection"):
        await asyncio.wait_for(idle, 20)
    assert time.monotonic() - started < 10  # not the 30 s command timeout
    append(alice, "alice", tricky_mail(2))
    status = await mailbox.connect()
    assert status.exists == 1


async def test_wrong_password_is_permanent_and_never_shows_the_password(
    alice: Dovecot, open_mailbox: MailboxMaker, caplog: pytest.LogCaptureFixture
) -> None:
    password = 'wrong"pass\\word'
    mailbox = open_mailbox(account(alice, password=password))
    with caplog.at_level(logging.DEBUG), pytest.raises(Permanent) as caught:
        await mailbox.connect()
    text = str(caught.value)
    assert text.startswith("login refused for alice@127.0.0.1")
    for form in (password, "wrong", "pass"):
        assert form not in text and form not in caplog.text
        assert form not in repr(caught.value.__cause__) and form not in repr(caught.value)


async def test_imaps_trusts_only_its_ca_file_unless_verification_is_off(
    alice: Dovecot, open_mailbox: MailboxMaker, caplog: pytest.LogCaptureFixture
) -> None:
    untrusted = open_mailbox(account(alice, protocol="IMAPS", ca_file=None))
    with pytest.raises(Permanent, match=r"certificate of IMAP server .* is not trusted"):
        await untrusted.connect()

    missing = open_mailbox(account(alice, protocol="IMAPS", ca_file="/nonexistent/ca.pem"))
    with pytest.raises(Permanent, match=r"CA file '/nonexistent/ca\.pem'"):
        await missing.connect()

    unverified = open_mailbox(account(alice, protocol="IMAPS", ca_file=None, verify_tls=False))
    with caplog.at_level(logging.WARNING, logger="shared.mailbox.imap"):
        assert (await unverified.connect()).uidvalidity
    assert any("verification is OFF" in r.getMessage() for r in caplog.records)


async def test_unreachable_or_wrong_servers_are_transient(
    alice: Dovecot, open_mailbox: MailboxMaker
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    refused = open_mailbox(account(alice, port=closed_port))
    with pytest.raises(Transient, match="unreachable"):
        await refused.connect()

    tls_to_plain = open_mailbox(account(alice, protocol="IMAPS", port=alice.imap_port))
    with pytest.raises(Transient, match="TLS"):
        await tls_to_plain.connect()


async def test_a_server_that_never_greets_times_out_as_transient(
    alice: Dovecot, open_mailbox: MailboxMaker, silent_port: int
) -> None:
    mailbox = open_mailbox(account(alice, port=silent_port), timeout=1.0)
    started = time.monotonic()
    with pytest.raises(Transient, match="did not answer connect within 1 s"):
        await mailbox.connect()
    assert time.monotonic() - started < 5


async def test_a_missing_folder_is_permanent(alice: Dovecot, open_mailbox: MailboxMaker) -> None:
    mailbox = open_mailbox(account(alice, folder="Does Not Exist"))
    with pytest.raises(Permanent, match="cannot select folder 'Does Not Exist' of alice@"):
        await mailbox.connect()


async def test_without_uidplus_nothing_is_deleted_and_without_idle_it_polls(
    alice: Dovecot, open_mailbox: MailboxMaker
) -> None:
    append(alice, "alice", tricky_mail(1), tricky_mail(2))
    mailbox = open_mailbox(account(alice))
    assert isinstance(mailbox, ImapMailbox)
    await mailbox.connect()
    # Dovecot offers both; take them away from what the session believes it was offered.
    session = mailbox._session
    assert session is not None
    session.capabilities -= {"UIDPLUS", "IDLE"}

    refs = (await mailbox.list_new(None)).refs
    with pytest.raises(Permanent, match="does not offer UIDPLUS") as refused:
        await mailbox.mark_done(refs[:1], disposal="delete")
    assert "after_fetch to 'seen'" in str(refused.value)
    assert server_flags(alice, "alice") == {1: "", 2: ""}  # not even flagged \Deleted

    started = time.monotonic()
    assert await mailbox.wait_for_news(0.3) is True  # no push: "look again"
    assert time.monotonic() - started >= 0.3
