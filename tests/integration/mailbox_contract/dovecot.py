"""The IMAP and POP3 contract servers: bob's INBOX on the session's Dovecot, emptied for each
test. Mail goes in with IMAP APPEND (Dovecot keeps the bytes as given) and is looked at over
IMAP for both protocols (POP3 has no flags to ask about)."""

from __future__ import annotations

import asyncio
import imaplib
import re
from dataclasses import dataclass

import pytest

from deploy.local.servers import Dovecot
from shared.models.config import IncomingAccount
from tests.integration.fetcher.helpers import account, append
from tests.integration.mailbox_contract.contract import Remaining

USER = "bob"
_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>]*>)", re.IGNORECASE | re.MULTILINE)


@dataclass
class DovecotServer:
    """bob's INBOX through one protocol (implements ``ContractServer``)."""

    name: str
    dovecot: Dovecot
    protocol: str

    def account(self, *, keep: bool = False, **fields: object) -> IncomingAccount:
        """An account on bob's INBOX with the suite's protocol."""
        values: dict[str, object] = {
            "name": f"contract-{self.name}",
            "protocol": self.protocol,
            "after_fetch": "seen" if keep else "delete",
        }
        return account(self.dovecot, USER, **(values | fields))

    async def deliver(self, raw: bytes) -> None:
        """APPEND the mail to bob's INBOX."""
        await asyncio.to_thread(append, self.dovecot, USER, raw)

    async def remaining(self) -> list[Remaining]:
        """Each mail in bob's INBOX with its Message-ID and whether it is \\Seen."""
        return await asyncio.to_thread(self._remaining)

    def _remaining(self) -> list[Remaining]:
        imap = imaplib.IMAP4("127.0.0.1", self.dovecot.imap_port, timeout=30)
        try:
            imap.login(USER, "bobpw")
            imap.select("INBOX", readonly=True)
            _, data = imap.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        finally:
            imap.logout()
        found = []
        for item in data:
            if not isinstance(item, tuple):
                continue
            envelope, header = item
            match = _MESSAGE_ID.search(header)
            found.append(
                Remaining(
                    message_id=match.group(1).decode() if match else None,
                    seen=b"\\Seen" in envelope,
                )
            )
        return found


@pytest.fixture
def imap_server(dovecot: Dovecot) -> DovecotServer:
    """IMAP (STARTTLS) on bob's emptied INBOX."""
    dovecot.reset_mailbox(USER)
    return DovecotServer(name="imap", dovecot=dovecot, protocol="IMAP")


@pytest.fixture
def pop3_server(dovecot: Dovecot) -> DovecotServer:
    """POP3S on bob's emptied INBOX."""
    dovecot.reset_mailbox(USER)
    return DovecotServer(name="pop3", dovecot=dovecot, protocol="POP3S")
