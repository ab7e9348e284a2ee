"""Which adapter serves which account protocol: a new transport is one line here."""

from __future__ import annotations

from collections.abc import Callable

from shared.mailbox.base import Mailbox
from shared.mailbox.graph import open_graph_mailbox
from shared.mailbox.imap import ImapMailbox
from shared.mailbox.jmap import open_jmap_mailbox
from shared.mailbox.pop3 import Pop3Mailbox

MailboxFactory = Callable[..., Mailbox]
"""Called as ``factory(account, timeout=..., tokens=...)`` (``tokens``: a TokenProvider for
an OAuth 2.0 account, else None); returns the adapter, not yet connected (IMAP's and
POP3's classes take exactly these)."""

FACTORIES: dict[str, MailboxFactory] = {
    "IMAP": ImapMailbox,
    "IMAPS": ImapMailbox,
    "POP3": Pop3Mailbox,
    "POP3S": Pop3Mailbox,
    "GRAPH": open_graph_mailbox,
    "JMAP": open_jmap_mailbox,
}
"""The account's ``protocol`` → the factory of its adapter."""
