"""Every protocol variant on the real Dovecot, through the whole fetch round: IMAP in clear,
IMAP+STARTTLS, IMAPS, POP3 in clear, POP3+STLS, POP3S. Each mail is stored byte for byte
and announced once; POP3 leaves the maildrop empty, IMAP as the delete setting says."""

from __future__ import annotations

import logging
import poplib
import ssl

import pytest

from deploy.local.servers import Dovecot
from services.fetcher.deps import FetcherDeps
from services.fetcher.ingest import fetch_once
from shared.errors import Permanent
from shared.runtime import Runtime
from tests.integration.fetcher.conftest import MailboxMaker
from tests.integration.fetcher.helpers import (
    PASSWORDS,
    account,
    announced,
    append,
    server_flags,
    tricky_mail,
)

pytestmark = pytest.mark.integration

VARIANTS = [
    ("IMAP", "none"),
    ("IMAP", "STARTTLS"),
    ("IMAP", "auto"),
    ("IMAPS", "auto"),
    ("POP3", "none"),
    ("POP3", "STARTTLS"),
    ("POP3", "auto"),
    ("POP3S", "auto"),
]

DOT_MAIL = (
    b"From: a@example.org\r\nTo: b@example.org\r\nSubject: dots\r\n"
    b"Message-ID: <dots@example.org>\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nend\r\n"
)


def maildrop_count(dovecot: Dovecot, user: str) -> int:
    """Messages in the user's maildrop, seen through POP3S."""
    context = ssl.create_default_context(cafile=str(dovecot.cert_file))
    pop = poplib.POP3_SSL("127.0.0.1", dovecot.pop3s_port, context=context, timeout=30)
    try:
        pop.user(user)
        pop.pass_(PASSWORDS[user])
        count, _ = pop.stat()
        return int(count)
    finally:
        pop.quit()


@pytest.fixture
def carol(dovecot: Dovecot) -> Dovecot:
    """Dovecot with alice's INBOX emptied."""
    dovecot.reset_mailbox("alice")
    return dovecot


@pytest.mark.parametrize(("protocol", "security"), VARIANTS)
async def test_each_variant_stores_and_announces_every_mail_once(
    rt: Runtime, carol: Dovecot, open_mailbox: MailboxMaker, protocol: str, security: str
) -> None:
    mails = [tricky_mail(n) for n in range(3)] + [DOT_MAIL]
    append(carol, "alice", *mails)
    keep = "delete" if protocol.startswith("POP3") else "seen"
    acc = account(carol, protocol=protocol, security=security, after_fetch=keep)
    mailbox = open_mailbox(acc)

    assert await fetch_once(FetcherDeps.of(rt), acc, mailbox) == 4
    await mailbox.close()  # POP3 commits its deletions with QUIT

    stored = await rt.store.raw_emails.recent(account=acc.name)
    by_message_id = {r.message_id: r for r in stored}
    assert len(stored) == 4 and len(by_message_id) == 4
    for n, mail in enumerate(mails):
        message_id = "<dots@example.org>" if mail is DOT_MAIL else f"<tricky-{n}@example.org>"
        assert await rt.store.raw_emails.data(raw_id=by_message_id[message_id].id) == mail
    assert sorted(m.raw_id for m in await announced(rt)) == sorted(r.id for r in stored)

    if acc.is_pop3:
        assert maildrop_count(carol, "alice") == 0
    else:
        assert set(server_flags(carol, "alice").values()) == {"\\Seen"}
    assert await fetch_once(FetcherDeps.of(rt), acc, mailbox) == 0
    assert await announced(rt) == []


@pytest.mark.parametrize("protocol", ["IMAP", "POP3"])
async def test_security_none_is_logged_as_a_password_in_clear(
    carol: Dovecot,
    open_mailbox: MailboxMaker,
    protocol: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mailbox = open_mailbox(account(carol, protocol=protocol, security="none"))
    with caplog.at_level(logging.WARNING):
        await mailbox.connect()
    assert "password travels in clear" in caplog.text
    assert PASSWORDS["alice"] not in caplog.text


@pytest.mark.parametrize("protocol", ["IMAP", "POP3"])
async def test_starttls_with_an_untrusted_certificate_is_permanent(
    carol: Dovecot, open_mailbox: MailboxMaker, protocol: str
) -> None:
    acc = account(carol, protocol=protocol, security="STARTTLS", ca_file=None)
    with pytest.raises(Permanent, match="not trusted") as info:
        await open_mailbox(acc).connect()
    assert PASSWORDS["alice"] not in str(info.value)


@pytest.mark.parametrize("protocol", ["POP3", "POP3S"])
async def test_pop3_wrong_password_is_permanent_without_the_password(
    carol: Dovecot, open_mailbox: MailboxMaker, protocol: str
) -> None:
    acc = account(carol, protocol=protocol, password="wrong-secret-pw")
    with pytest.raises(Permanent, match=r"login refused for alice@127\.0\.0\.1") as info:
        await open_mailbox(acc).connect()
    assert "wrong-secret-pw" not in str(info.value)
