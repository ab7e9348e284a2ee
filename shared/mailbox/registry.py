"""Which adapter serves which account protocol: a new transport is one line here."""

from __future__ import annotations

from collections.abc import Callable

from shared.mailbox.base import Mailbox
from shared.mailbox.graph import open_graph_mailbox
from shared.mailbox.imap import open_imap_mailbox
from shared.mailbox.jmap import open_jmap_mailbox
from shared.mailbox.pop3 import open_pop3_mailbox

MailboxFactory = Callable[..., Mailbox]
"""Called as ``factory(account, timeout=..., tokens=...)`` (``tokens``: a TokenProvider for
an OAuth 2.0 account, else None); returns the adapter, not yet connected."""

FACTORIES: dict[str, MailboxFactory] = {
    "IMAP": open_imap_mailbox,
    "IMAPS": open_imap_mailbox,
    "POP3": open_pop3_mailbox,
    "POP3S": open_pop3_mailbox,
    "GRAPH": open_graph_mailbox,
    "JMAP": open_jmap_mailbox,
}
"""The account's ``protocol`` → the factory of its adapter."""
