"""Helpers of the processor's integration tests: store a raw mail, drain the sender queue."""

from __future__ import annotations

import hashlib

from shared.models.messages import MailReceived, OutgoingMail
from shared.models.records import RawEmail
from shared.runtime import Runtime
from shared.topology import SENDER_OUTBOUND


async def store_raw(
    rt: Runtime, data: bytes, key: str, *, account: str = "support"
) -> MailReceived:
    """Store ``data`` as fetched from ``account`` and the announcement of it."""
    record = RawEmail(
        account=account,
        source_key=key,
        folder="INBOX",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    stored, _ = await rt.store.raw_emails.insert(record=record, data=data)
    return MailReceived(raw_id=stored.id, account=account, source_key=key)


async def outgoing(rt: Runtime) -> list[OutgoingMail]:
    """Take every message off the sender's queue."""
    queue = await rt.broker.declare_queue(SENDER_OUTBOUND)
    found = []
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        found.append(OutgoingMail.model_validate_json(message.body))
    return found
