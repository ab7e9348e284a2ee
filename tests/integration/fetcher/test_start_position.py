"""A new account's start position: all mail, only mail from now on, or mail since a date;
older mail is never fetched nor touched."""

from __future__ import annotations

import datetime
import imaplib

import pytest

from deploy.local.servers import Dovecot
from services.fetcher.deps import FetcherDeps
from services.fetcher.ingest import fetch_once
from shared.runtime import Runtime
from tests.integration.fetcher.conftest import MailboxMaker
from tests.integration.fetcher.helpers import PASSWORDS, account, append, server_flags, tricky_mail

pytestmark = pytest.mark.integration


def append_dated(dovecot: Dovecot, mail: bytes, when: datetime.datetime) -> None:
    with imaplib.IMAP4("127.0.0.1", dovecot.imap_port, timeout=30) as imap:
        imap.login("bob", PASSWORDS["bob"])
        imap.append("INBOX", None, imaplib.Time2Internaldate(when.timestamp()), mail)


async def test_from_now_on_skips_the_mail_already_there(
    rt: Runtime, dovecot: Dovecot, open_mailbox: MailboxMaker
) -> None:
    dovecot.reset_mailbox("bob")
    append(dovecot, "bob", tricky_mail(1), tricky_mail(2))
    acc = account(dovecot, "bob", start_position="new")
    mailbox = open_mailbox(acc)
    assert await fetch_once(FetcherDeps.of(rt), acc, mailbox) == 0
    append(dovecot, "bob", tricky_mail(3))
    assert await fetch_once(FetcherDeps.of(rt), acc, mailbox) == 1
    (record,) = await rt.store.raw_emails.recent(account=acc.name)
    assert record.message_id == "<tricky-3@example.org>"
    assert server_flags(dovecot, "bob") == {1: "", 2: "", 3: "\\Seen"}


async def test_since_a_date_takes_only_mail_received_from_then(
    rt: Runtime, dovecot: Dovecot, open_mailbox: MailboxMaker
) -> None:
    dovecot.reset_mailbox("bob")
    old = datetime.datetime(2020, 5, 1, 12, tzinfo=datetime.UTC)
    append_dated(dovecot, tricky_mail(1), old)
    append_dated(dovecot, tricky_mail(2), old)
    append(dovecot, "bob", tricky_mail(3), tricky_mail(4))
    acc = account(dovecot, "bob", start_position="since", start_date="2024-01-01")
    assert await fetch_once(FetcherDeps.of(rt), acc, open_mailbox(acc)) == 2
    stored = await rt.store.raw_emails.recent(account=acc.name)
    assert sorted(r.message_id or "" for r in stored) == [
        "<tricky-3@example.org>",
        "<tricky-4@example.org>",
    ]
