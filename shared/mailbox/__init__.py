"""Mailbox adapters behind one async protocol."""

from shared.mailbox.base import FetchedMail, Mailbox, MailboxStatus, MessageRef
from shared.mailbox.imap import ImapMailbox

__all__ = ["FetchedMail", "ImapMailbox", "Mailbox", "MailboxStatus", "MessageRef"]
