"""Per-recipient delivery state: pure functions from an SMTP outcome to the outbox record.

A recipient is ``queued`` until tried, then ``sent`` (2xx), ``deferred`` (4xx, timeout,
dropped connection — retried later), ``failed`` (5xx, or retries exhausted),
``intercepted`` (stored in the test archive instead of sent), ``stopped`` (by a script) or
``unknown`` (an attempt stopped mid-transaction: possibly sent, never resent on a guess).
The mail's own status follows:

- some recipient still ``queued``/``deferred`` → ``queued``, and the mail is retried for
  those recipients only (the others never get a second copy);
- otherwise ``sent`` when at least one recipient got it (failed ones stay visible on the
  entry), ``failed`` when none did — then the mail goes to the failed-mail desk;
- ``stopped`` when an outgoing-mail script stopped it (or removed every recipient).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from services.sender.transport import SendResult
from shared.models.records import OutboxStatus, RecipientDelivery, RecipientState


def initial_recipients(addresses: Iterable[str]) -> list[RecipientDelivery]:
    """One queued state per distinct address (case-insensitive), in order."""
    seen: set[str] = set()
    out: list[RecipientDelivery] = []
    for address in addresses:
        if address.lower() not in seen:
            seen.add(address.lower())
            out.append(RecipientDelivery(address=address))
    return out


def pending(recipients: Iterable[RecipientDelivery]) -> list[str]:
    """Addresses that still wait for a (re)try."""
    return [r.address for r in recipients if r.pending]


def reopen(recipients: Iterable[RecipientDelivery]) -> list[RecipientDelivery]:
    """For a replay from the desk: failed recipients, and those whose delivery is unknown
    (the operator decided to send again), are queued again; the rest stay."""
    return [
        r.model_copy(update={"state": "queued"}) if r.state in ("failed", "unknown") else r
        for r in recipients
    ]


def _set(
    r: RecipientDelivery, state: RecipientState, reply: str | None, now: datetime
) -> RecipientDelivery:
    return r.model_copy(
        update={"state": state, "reply": reply, "attempts": r.attempts + 1, "updated_at": now}
    )


def apply_reply(
    recipients: Iterable[RecipientDelivery], reply: SendResult, *, now: datetime
) -> list[RecipientDelivery]:
    """The states after a transaction to the pending recipients that reached DATA (or not)."""
    refused = {address.lower(): refusal for address, refusal in reply.refused.items()}
    out = []
    for r in recipients:
        if not r.pending:
            out.append(r)
            continue
        refusal = refused.get(r.address.lower())
        if refusal is not None:
            out.append(_set(r, "failed" if refusal.permanent else "deferred", str(refusal), now))
        elif reply.reply is not None:
            out.append(_set(r, "sent", reply.reply, now))
        else:  # cannot happen: without DATA every recipient was refused
            out.append(_set(r, "deferred", "no reply", now))
    return out


def apply_error(
    recipients: Iterable[RecipientDelivery], state: RecipientState, error: str, *, now: datetime
) -> list[RecipientDelivery]:
    """Every pending recipient takes ``state`` with ``error`` (a failure of the whole mail)."""
    return [_set(r, state, error, now) if r.pending else r for r in recipients]


@dataclass(frozen=True)
class Summary:
    """The mail's status derived from its recipients, and the text for operators."""

    status: OutboxStatus
    error: str | None
    retry: bool
    """True when some recipient is deferred: the mail must be retried."""


def summarise(recipients: list[RecipientDelivery]) -> Summary:
    """The mail's status from its recipients' states."""
    failed = [r for r in recipients if r.state in ("failed", "unknown")]
    deferred = [r for r in recipients if r.pending]
    problems = "; ".join(f"{r.address}: {r.reply}" for r in (*deferred, *failed))
    if deferred:
        return Summary("queued", f"waiting for retry: {problems}", retry=True)
    if any(r.state == "intercepted" for r in recipients):
        return Summary("intercepted", None, retry=False)
    if any(r.state == "sent" for r in recipients):
        return Summary("sent", f"refused recipients: {problems}" if failed else None, retry=False)
    if not failed:
        stopped = "; ".join(f"{r.address}: {r.reply}" for r in recipients if r.state == "stopped")
        return Summary("stopped", stopped or None, retry=False)
    return Summary("failed", f"every recipient failed: {problems}", retry=False)


def reconcile(
    recipients: list[RecipientDelivery], addresses: Iterable[str], *, note: str, now: datetime
) -> list[RecipientDelivery]:
    """The states after outgoing-mail scripts changed the recipients to ``addresses``:
    pending ones they removed are ``stopped`` with ``note``, ones they added are queued."""
    wanted = {a.lower(): a for a in addresses}
    out = [
        r.model_copy(update={"state": "stopped", "reply": note, "updated_at": now})
        if r.pending and r.address.lower() not in wanted
        else r
        for r in recipients
    ]
    known = {r.address.lower() for r in recipients}
    out += [RecipientDelivery(address=a) for low, a in wanted.items() if low not in known]
    return out
