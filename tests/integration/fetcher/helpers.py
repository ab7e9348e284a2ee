"""Helpers for the fetcher's tests on real Dovecot: accounts, exact-bytes mail, server state.

Mail is put in with IMAP APPEND (Dovecot keeps the bytes as given) when a test compares
bytes, and through LMTP (``dovecot.deliver``) where the real delivery path matters.
"""

from __future__ import annotations

import imaplib
import re
from typing import Any

from deploy.local.servers import Dovecot
from shared.models.config import IncomingAccount
from shared.models.cursors import ImapCursor
from shared.models.messages import MailReceived
from shared.runtime import Runtime
from shared.topology import PROCESSOR_INBOUND

PASSWORDS = {"alice": "alicepw", "bob": "bobpw"}


def account(dovecot: Dovecot, user: str = "alice", **fields: Any) -> IncomingAccount:
    """An account on the test Dovecot: IMAP (upgraded with STARTTLS, security auto) unless
    ``protocol`` says otherwise; the port follows the protocol, the CA is the test CA."""
    protocol = fields.get("protocol", "IMAP")
    ports = {
        "IMAP": dovecot.imap_port,
        "IMAPS": dovecot.imaps_port,
        "POP3": dovecot.pop3_port,
        "POP3S": dovecot.pop3s_port,
    }
    values: dict[str, Any] = {
        "name": f"{user}-box",
        "protocol": protocol,
        "host": "127.0.0.1",
        "port": ports[protocol],
        "username": user,
        "password": PASSWORDS[user],
        "ca_file": str(dovecot.cert_file),
    }
    return IncomingAccount(**(values | fields))


def tricky_mail(n: int) -> bytes:
    """A mail whose body looks like IMAP syntax and holds 8-bit bytes, with CRLF lines."""
    return (
        b"From: Customer <customer@example.org>\r\n"
        b"To: support@example.com\r\n"
        b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= {5} number %d\r\n"
        b"Message-ID: <tricky-%d@example.org>\r\n"
        b"Content-Type: text/plain; charset=latin-1\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n"
        b"\r\n"
        b"A literal marker {12}\r\n"
        b")\r\n"
        b"* 3 EXISTS\r\n"
        b"A001 OK looks like a status line\r\n"
        b"Gr\xfc\xdfe \xff\xfe\r\n" % (n, n)
    )


def _imap(dovecot: Dovecot, user: str) -> imaplib.IMAP4:
    imap = imaplib.IMAP4("127.0.0.1", dovecot.imap_port, timeout=30)
    imap.login(user, PASSWORDS[user])
    imap.select("INBOX")
    return imap


def append(dovecot: Dovecot, user: str, *mails: bytes) -> None:
    """Put mails into the user's INBOX byte for byte."""
    with _imap(dovecot, user) as imap:
        for mail in mails:
            imap.append("INBOX", None, None, mail)


def server_flags(dovecot: Dovecot, user: str) -> dict[int, str]:
    """UID → FLAGS text of every message in the user's INBOX."""
    with _imap(dovecot, user) as imap:
        _, data = imap.uid("FETCH", "1:*", "(UID FLAGS)")
    flags: dict[int, str] = {}
    for item in data:
        if isinstance(item, bytes) and (match := re.search(rb"UID (\d+) FLAGS \(([^)]*)\)", item)):
            flags[int(match.group(1))] = match.group(2).decode()
    return flags


async def announced(rt: Runtime) -> list[MailReceived]:
    """Take every ``mail.received`` waiting in ``processor.inbound``."""
    queue = await rt.broker.declare_queue(PROCESSOR_INBOUND)
    found = []
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        found.append(MailReceived.model_validate_json(message.body))
    return found


async def imap_position(rt: Runtime, acc: IncomingAccount) -> tuple[int, int] | None:
    """The IMAP adapter's stored cursor as (UIDVALIDITY, UID mark); None: never stored."""
    state = await rt.store.fetch_state.get(account=acc.name, folder=acc.folder)
    cursor = ImapCursor.parse(state.cursor)
    return None if cursor is None else (cursor.uidvalidity, cursor.mark)


def uid_of(source_key: str) -> int:
    """The UID in an IMAP source key (``uidvalidity:uid``)."""
    return int(source_key.rsplit(":", 1)[1])
