"""Address headers → every mailbox they name, liberal in what is accepted.

Received mail is not a web form: ``MAILER-DAEMON`` without a domain, ``root@localhost``,
``user@host.local`` / ``.test`` / ``.invalid``, quoted local parts (``"john smith"@example.org``),
a trailing dot after the domain, route addresses (``<@relay:user@host>``) and comments
(``user@host (Name)``) all name a real mailbox. Each is kept as written (a trailing dot after the
domain is dropped: it only says the name is fully qualified) and marked ``replyable=False`` when
no mail could be sent to it, i.e. when it fails the validation outgoing mail uses
(:class:`shared.models.messages.MailAddress`). Nothing automatic is ever sent to those.
"""

from __future__ import annotations

import email.utils
import re

from pydantic import ValidationError

from services.processor.parsing._decode import header_text
from shared.models.messages import MailAddress
from shared.models.records import ReceivedAddress

MAX_ADDRESSES = 1000
# A bare local name such as MAILER-DAEMON or postmaster: one atom, no "@".
_ROUTE = re.compile(r"<\s*@[^\s,:<>@]+(?:\s*,\s*@[^\s,:<>@]+)*\s*:")
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,254}")
# "Name <mailto:user@host>": a link pasted into the address field.
_MAILTO = re.compile(r"<\s*mailto:", re.IGNORECASE)
# What getaddresses returns for '"Name" user@host' or 'Name user@host': one "address".
_RUN_TOGETHER = re.compile(r"(?P<name>.*\S)\s+(?P<addr>[^\s\"<>@]+@[^\s\"<>@]+)")
# Two unquoted words separated by a comma before an angle address: "Doe, John <john@host>".
_LAST_FIRST = re.compile(
    r"(?P<start>^|,)\s*(?P<last>[^,\"<>@();:\\]+),(?P<first>[^,\"<>@();:\\]+?)"
    r"\s*(?P<address><[^<>@\s]+@[^<>\s]+>)"
)
# Local names that stand alone as a mailbox in address lists (RFC 2142 and the MTA's own).
_SYSTEM_MAILBOXES = {
    "mailer-daemon", "postmaster", "root", "abuse", "hostmaster", "webmaster", "noc",
    "security", "nobody",
}  # fmt: skip


def parse_addresses(value: str, what: str, defects: list[str]) -> list[ReceivedAddress]:
    """Every mailbox of an address header value (already unfolded and 8-bit decoded)."""
    if not value.strip():
        return []
    if _ROUTE.search(value):
        # Obsolete source routes (RFC 5322 4.4): the stdlib splits "@a,@b:" at its comma.
        defects.append(f"{what}: source route removed")
        value = _ROUTE.sub("<", value)
    if _MAILTO.search(value):
        defects.append(f"{what}: 'mailto:' removed from an address")
        value = _MAILTO.sub("<", value)
    value = _quote_last_first(value, what, defects)
    # Split before decoding: a decoded display name may contain commas or angle brackets.
    try:
        pairs = email.utils.getaddresses([value])
    except RecursionError:  # the stdlib reads nested comments "((((" by recursion
        defects.append(f"{what}: comments nested too deep to read the addresses")
        return []
    result: list[ReceivedAddress] = []
    for display, addr in pairs[:MAX_ADDRESSES]:
        found = _address(display, addr.strip(), value, what, defects)
        if found is not None:
            result.append(found)
    if not result and pairs == [("", "")] and not value.rstrip().endswith(";"):
        # (an empty group such as "undisclosed-recipients:;" is well-formed)
        defects.append(f"{what}: no address in {value[:80]!r}")
    return result


def _quote_last_first(value: str, what: str, defects: list[str]) -> str:
    """``Doe, John <john@example.org>`` (Outlook's "Last, First" written without quotes) with
    its name quoted: read as written it is a mailbox "Doe" and "John <john@example.org>"."""

    def quote(found: re.Match[str]) -> str:
        last, first = found.group("last").strip(), found.group("first").strip()
        if last.lower() in _SYSTEM_MAILBOXES:  # "postmaster, John <j@x>" lists two mailboxes
            return found.group(0)
        name = f"{last}, {first}"
        defects.append(f"{what}: unquoted comma read as part of the name {name!r}")
        return f'{found.group("start")} "{name}" {found.group("address")}'

    return _LAST_FIRST.sub(quote, value)


def _address(
    display: str, addr: str, value: str, what: str, defects: list[str]
) -> ReceivedAddress | None:
    if not addr:
        return None
    if "@" not in addr and not _bare_mailbox(addr, value):
        # getaddresses reads "not an address" as the address "not": that is no mailbox.
        defects.append(f"{what}: invalid address {addr[:80]!r}")
        return None
    apart = _RUN_TOGETHER.fullmatch(addr) if "@" in addr else None
    if apart is not None:
        # 'Name user@host' without angle brackets: getaddresses runs the two together.
        defects.append(f"{what}: name and address without angle brackets in {addr[:80]!r}")
        display = display or apart.group("name").strip('"').strip()
        addr = apart.group("addr")
    if addr.endswith(".") and "@" in addr:
        defects.append(f"{what}: trailing dot removed from {addr[:80]!r}")
        addr = addr.rstrip(".")
    name = header_text(display, what, defects)
    replyable = mailbox(name, addr) is not None
    if not replyable:
        defects.append(f"{what}: {addr[:80]!r} kept, but no mail can be sent to it")
    return ReceivedAddress(name=name, address=addr, replyable=replyable)


def _bare_mailbox(addr: str, value: str) -> bool:
    """True when a local name stands alone as a mailbox: ``<MAILER-DAEMON>``, or an entry of
    the list that is nothing else (a comment aside)."""
    if not _ATOM.fullmatch(addr):
        return False
    word = re.escape(addr)
    alone = rf"<{word}>|(?:^|[,:])\s*{word}\s*(?:\([^()]*\))?\s*(?:[,;]|$)"
    return re.search(alone, value) is not None


def mailbox(name: str, address: str) -> MailAddress | None:
    """The address as outgoing mail takes it, or None when no mail can be sent to it.

    A display name that outgoing mail refuses (a decoded line break) is left out rather than
    losing the address.
    """
    for display in (name, ""):
        try:
            return MailAddress(name=display, address=address)
        except ValidationError:
            continue
    return None
