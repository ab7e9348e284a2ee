"""One fetch round for one account: take new mail, store it raw, announce it, then let go.

Each step runs for a chunk of fetched mails at once (one insert, the publishes' confirms
awaited together, one status update), because per-mail round trips would cap the
fetcher far below what the IMAP side delivers. For every single mail the order holds,
and a crash (or an error) after any step loses no mail and makes no duplicate case:

1. **store** the raw bytes under the unique key (account, ``uidvalidity:uid``).
   Crash before: the mail is still on the server, above the fetch mark; the next round
   takes it again. Crash after: the next round's insert finds the stored record instead
   of making a second one.
2. **publish** ``mail.received`` and wait for the broker's confirm, but only while the
   record's status is still ``stored``. Crash before the confirm: the record stays
   ``stored``, so the next round publishes it. Crash after the confirm but before step 3:
   the next round publishes it once more; the processor is idempotent per raw mail (it
   skips a processed one and keeps one case per raw mail), so no second case appears.
3. **mark announced** (``stored`` → ``announced`` only, so a processor that was faster is
   never overwritten). From now on no round publishes this mail again.
4. **per batch, flag \\Seen or delete** on the server, only for mails that got through
   1-3. Crash before: the mails stay on the server and are listed again; steps 1-3 find
   them stored and announced and do nothing but repeat this step.
5. **advance the fetch mark** to the highest UID below which every listed mail was taken.
   Crash before: the batch is listed again and, as above, only step 4 repeats. A listed
   mail the server did not hand over stops the mark below it, so it is retried rather
   than skipped; one that was deleted meanwhile is simply not listed next time.

A new UIDVALIDITY means the server renumbered the folder: the round starts from UID 0, and
the new source keys (``uidvalidity:uid``) cannot collide with the old ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Sequence

from shared.broker import publish
from shared.mailbox import FetchedMail, Mailbox, MessageRef
from shared.models.config import IncomingAccount
from shared.models.messages import MailReceived
from shared.models.records import RawEmail
from shared.runtime import Runtime
from shared.topology import MAIL_RECEIVED

log = logging.getLogger(__name__)

BATCH_SIZE = 100
"""Mails per commit unit: flagged or deleted together, then the mark moves."""
STORE_MAX_BYTES = 16 * 1024 * 1024
"""Mails of a batch are stored (one insert) and announced together up to this many bytes."""

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_MESSAGE_ID = re.compile(rb"^Message-ID[ \t]*:(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)
_FOLD = re.compile(rb"\r?\n[ \t]+")
_ANGLE_ADDR = re.compile(rb"<[^<>\s]+>")


def message_id_of(data: bytes) -> str | None:
    """The Message-ID of a raw mail, read from its header block only (no MIME parsing).

    Folded headers are unfolded; the ``<...>`` token wins over comments around it.
    """
    end = _HEADER_END.search(data)
    header = data if end is None else data[: end.start()]
    match = _MESSAGE_ID.search(header)
    if match is None:
        return None
    value = _FOLD.sub(b" ", match.group(1)).strip()
    token = _ANGLE_ADDR.search(value)
    text = (token.group(0) if token else value).decode("utf-8", "replace")
    return text or None


def contiguous_mark(batch: Sequence[MessageRef], taken: set[int]) -> int | None:
    """The highest UID of ``batch`` (ascending) up to which every mail was taken."""
    mark: int | None = None
    for ref in batch:
        if ref.uid is None or ref.uid not in taken:
            break
        mark = ref.uid
    return mark


async def fetch_once(rt: Runtime, account: IncomingAccount, mailbox: Mailbox) -> int:
    """Take the account's new mail; return how many mails were stored for the first time."""
    status = await mailbox.connect()
    state = await rt.store.fetch_state.get(account=account.name, folder=account.folder)
    same_numbering = state.uidvalidity is not None and state.uidvalidity == status.uidvalidity
    if not same_numbering and status.uidvalidity is not None:
        if state.uidvalidity is not None:
            log.warning(
                "UIDVALIDITY of %s changed: the server renumbered the folder, fetching it anew",
                account.name,
                extra={
                    "account": account.name,
                    "old": state.uidvalidity,
                    "new": status.uidvalidity,
                },
            )
        # Remember the new numbering now, so that an empty folder does not look renumbered
        # again next round; mark 0 keeps every mail of the folder due.
        await rt.store.fetch_state.advance(
            account=account.name, folder=account.folder, uidvalidity=status.uidvalidity, last_uid=0
        )
    refs = await mailbox.list_new(after_uid=state.last_uid if same_numbering else 0)
    deletes = account.deletes(rt.config.settings.delete_read_messages)
    created = 0
    for start in range(0, len(refs), BATCH_SIZE):
        batch = refs[start : start + BATCH_SIZE]
        taken: list[MessageRef] = []
        async for chunk in _chunks(mailbox.fetch(batch)):
            created += await _store_and_announce(rt, account, status.uidvalidity, chunk)
            taken.extend(mail.ref for mail in chunk)
        if not taken:
            continue
        if deletes:
            await mailbox.delete(taken)
        else:
            await mailbox.mark_seen(taken)
        mark = contiguous_mark(batch, {ref.uid for ref in taken if ref.uid is not None})
        if mark is not None and status.uidvalidity is not None:
            await rt.store.fetch_state.advance(
                account=account.name,
                folder=account.folder,
                uidvalidity=status.uidvalidity,
                last_uid=mark,
            )
        if len(taken) < len(batch):
            log.warning(
                "%s: the server listed %d mails it then did not hand over; they are tried again",
                account.name,
                len(batch) - len(taken),
                extra={"account": account.name},
            )
    if refs:
        log.info(
            "%s: %d mails listed, %d new",
            account.name,
            len(refs),
            created,
            extra={"account": account.name, "listed": len(refs), "new": created},
        )
    return created


async def _chunks(mails: AsyncIterator[FetchedMail]) -> AsyncIterator[list[FetchedMail]]:
    """Group fetched mails so that one chunk holds at most STORE_MAX_BYTES (or one mail)."""
    chunk: list[FetchedMail] = []
    size = 0
    async for mail in mails:
        if chunk and size + len(mail.data) > STORE_MAX_BYTES:
            yield chunk
            chunk, size = [], 0
        chunk.append(mail)
        size += len(mail.data)
    if chunk:
        yield chunk


async def _store_and_announce(
    rt: Runtime, account: IncomingAccount, uidvalidity: int | None, mails: list[FetchedMail]
) -> int:
    """Steps 1-3 for a chunk of mails; returns how many this call stored."""
    records = [
        (
            RawEmail(
                account=account.name,
                source_key=mail.ref.source_key,
                folder=account.folder,
                uidvalidity=uidvalidity,
                uid=mail.ref.uid,
                size=len(mail.data),
                sha256=hashlib.sha256(mail.data).hexdigest(),
                message_id=message_id_of(mail.data),
            ),
            mail.data,
        )
        for mail in mails
    ]
    stored = await rt.store.raw_emails.insert_many(records=records)
    fresh = [record for record, _ in stored if record.status == "stored"]
    # Sent in order on one channel; the confirms are awaited together, not one by one.
    outcomes = await asyncio.gather(
        *(
            publish(
                rt.broker,
                MailReceived(
                    raw_id=record.id,
                    account=account.name,
                    source_key=record.source_key,
                    correlation_id=record.correlation_id,
                ),
                routing_key=MAIL_RECEIVED,
            )
            for record in fresh
        ),
        return_exceptions=True,
    )
    failed = next((o for o in outcomes if isinstance(o, BaseException)), None)
    if failed is not None:
        raise failed
    await rt.store.raw_emails.set_status_many(
        raw_ids=[record.id for record in fresh], status="announced", only_from=("stored",)
    )
    return sum(created for _, created in stored)
