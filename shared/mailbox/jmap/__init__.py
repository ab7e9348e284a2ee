"""JMAP (RFC 8620/8621) for fetching: the adapter package behind the mailbox seam."""

from shared.mailbox.jmap.mailbox import JmapMailbox, open_jmap_mailbox

__all__ = ["JmapMailbox", "open_jmap_mailbox"]
