"""Mailbox adapters behind one async protocol."""

from shared.mailbox.base import FetchedMail, Mailbox, MailboxStatus, MessageRef

__all__ = ["FetchedMail", "Mailbox", "MailboxStatus", "MessageRef"]
