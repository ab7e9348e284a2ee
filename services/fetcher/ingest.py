"""One fetch round for one account: take new mail, store it raw, announce it, then let go.

Each step runs for a chunk of fetched mails at once (one insert, the publishes' confirms
awaited together, one status update), because per-mail round trips would cap the
fetcher far below what the IMAP side delivers; and while one chunk is stored and announced
the next one is already being fetched (one mailbox command at a time, and only next to a
small chunk, so memory holds at most one large mail). For every single mail the order
holds, and a crash (or an error) after any step loses no mail and makes no duplicate case:

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
4. **per batch, flag \\Seen or delete** on the server (POP3 with ``leave_on_server``:
   remember the UIDLs in the fetch state, and a remembered UIDL is never fetched again),
   only for mails that got through 1-3. Crash before: the mails stay on the server and are
   listed again; steps 1-3 find them stored and announced and do nothing but repeat this
   step.
5. **advance the fetch mark** to the highest UID below which every listed mail was taken.
   Crash before: the batch is listed again and, as above, only step 4 repeats. A listed
   mail the server did not hand over stops the mark below it, so it is retried rather
   than skipped; one that was deleted meanwhile is simply not listed next time.

A new UIDVALIDITY means the server renumbered the folder: the round starts from UID 0, and
the new source keys (``uidvalidity:uid``) cannot collide with the old ones. The same mail
under a new key is caught by its Message-ID and sha256 together (its **twin**, looked up in
MongoDB once the folder was ever renumbered, and always for POP3): it is not
stored again, and only announced if the twin itself never was; then it is flagged or
deleted like any other. A mail without a Message-ID is told apart by its key alone.

A mail above the maximum size is never downloaded whole: its header block becomes a stub
(the headers, a plain-text body saying why) that is stored and announced like any mail, so
a case shows it; the original stays on the server (flagged \\Seen, never deleted).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from email import policy
from email.parser import BytesHeaderParser

from services.fetcher.fence import NO_FENCE, Fence
from shared import metrics
from shared.broker import publish_many
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


def stub_of(header: bytes, *, size: int | None, limit: int) -> tuple[bytes, str]:
    """A stand-in for a mail above the size limit: its headers (without the MIME ones,
    whose body is not there) and a plain-text body with the reason; and the reason."""
    reason = (
        f"mail of {size if size is not None else 'unknown'} bytes exceeds the maximum size of "
        f"{limit} bytes; only its headers were stored, the original stays on the server"
    )
    message = BytesHeaderParser(policy=policy.compat32).parsebytes(header)
    for name in ("Content-Type", "Content-Transfer-Encoding", "Content-Disposition"):
        del message[name]
    message["X-Mailroom-Truncated"] = reason
    message["Content-Type"] = 'text/plain; charset="utf-8"'
    message.set_payload(f"[Mailroom] This mail was not fetched whole: {reason}.\n")
    return message.as_bytes(policy=policy.compat32.clone(linesep="\r\n")), reason


def contiguous_mark(batch: Sequence[MessageRef], taken: set[int]) -> int | None:
    """The highest UID of ``batch`` (ascending) up to which every mail was taken."""
    mark: int | None = None
    for ref in batch:
        if ref.uid is None or ref.uid not in taken:
            break
        mark = ref.uid
    return mark


async def fetch_once(
    rt: Runtime, account: IncomingAccount, mailbox: Mailbox, *, fence: Fence = NO_FENCE
) -> int:
    """Take the account's new mail; return how many mails were stored for the first time.

    ``fence`` (the account's lease, see ``services.fetcher.fence``) is checked before mail is
    deleted or flagged and named in every fetch-state write: a round that lost its lease
    raises LeaseLost there instead of touching the mailbox or the mark.
    """
    status = await mailbox.connect()
    state = await rt.store.fetch_state.get(account=account.name, folder=account.folder)
    same_numbering = state.uidvalidity is not None and state.uidvalidity == status.uidvalidity
    if not same_numbering and status.uidvalidity is not None:
        if state.uidvalidity is not None:
            await rt.store.fetch_state.mark_renumbered(
                account=account.name, folder=account.folder, fence=fence.token
            )
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
        # again next round; mark 0 keeps every mail of the folder due. A new account's start
        # position may put the mark higher: older mail is then never taken.
        start = 0
        if state.uidvalidity is None and account.start_position != "all":
            start = await mailbox.start_mark(since=account.start_date)
            log.info(
                "%s starts at UID %d (start position %s)",
                account.name,
                start,
                account.start_position,
                extra={"account": account.name, "start_uid": start},
            )
        await rt.store.fetch_state.advance(
            account=account.name,
            folder=account.folder,
            uidvalidity=status.uidvalidity,
            last_uid=start,
            fence=fence.token,
        )
        state = state.model_copy(update={"last_uid": start})
    refs = await mailbox.list_new(
        after_uid=state.last_uid if same_numbering or state.uidvalidity is None else 0
    )
    deletes = account.deletes(rt.config.settings.delete_read_messages)
    # POP3 leaving mail on the server: a UIDL taken before is not fetched again.
    remember = account.is_pop3 and not deletes
    if remember:
        refs = await _untaken(rt, account, state.uidls, refs, fence)
    # Stored twins under other keys exist only after a renumbering, or with POP3, whose
    # UIDLs can change unnoticed (a server migration): only then is MongoDB asked.
    renumbered = state.renumbered or (state.uidvalidity is not None and not same_numbering)
    twins_possible = renumbered or status.uidvalidity is None
    max_size = int(rt.config.settings.max_mail_size_mb * 1024 * 1024)
    created = 0
    batches = [refs[i : i + BATCH_SIZE] for i in range(0, len(refs), BATCH_SIZE)]
    # One mailbox command at a time: the next chunk is fetched while this one is stored.
    lock = asyncio.Lock()
    fetched = _fetched(mailbox, batches, max_size)
    taken: list[MessageRef] = []
    kept: list[MessageRef] = []  # stubs: the original stays on the server
    upcoming: asyncio.Future[list[FetchedMail] | int | None] | None = None
    try:
        upcoming = asyncio.ensure_future(_next(fetched, lock))
        while (item := await upcoming) is not None:
            # Fetch ahead only next to a small chunk, so memory holds one large mail at most.
            light = isinstance(item, int) or sum(len(m.data) for m in item) < STORE_MAX_BYTES
            upcoming = asyncio.ensure_future(_next(fetched, lock)) if light else None
            if isinstance(item, list):
                created += await _store_and_announce(
                    rt, account, status.uidvalidity, item, max_size, twins_possible
                )
                taken.extend(mail.ref for mail in item if mail.complete)
                kept.extend(mail.ref for mail in item if not mail.complete)
            else:
                await _let_go(
                    rt,
                    account,
                    mailbox,
                    status.uidvalidity,
                    batches[item],
                    taken,
                    kept,
                    deletes=deletes,
                    remember=remember,
                    lock=lock,
                    fence=fence,
                )
                taken, kept = [], []
            if upcoming is None:
                upcoming = asyncio.ensure_future(_next(fetched, lock))
    finally:
        await _settle(upcoming)
        await fetched.aclose()
    if refs:
        log.info(
            "%s: %d mails listed, %d new",
            account.name,
            len(refs),
            created,
            extra={"account": account.name, "listed": len(refs), "new": created},
        )
    return created


async def _untaken(
    rt: Runtime,
    account: IncomingAccount,
    remembered: list[str],
    refs: list[MessageRef],
    fence: Fence,
) -> list[MessageRef]:
    """The listed POP3 messages whose UIDL was not taken before; UIDLs no longer listed are
    forgotten (the maildrop is what the server listed at login).

    A UIDL stored and announced but not remembered (the round stopped in between) is
    remembered now instead of being fetched again; one stored but never announced is
    fetched, so that the usual steps announce it.
    """
    listed = {ref.source_key for ref in refs}
    gone = [uidl for uidl in remembered if uidl not in listed]
    if gone:
        await rt.store.fetch_state.forget_uidls(
            account=account.name, folder=account.folder, uidls=gone, fence=fence.token
        )
    taken = set(remembered)
    unknown = [key for key in listed if key not in taken]
    done = await rt.store.raw_emails.announced_keys(account=account.name, source_keys=unknown)
    if done:
        await rt.store.fetch_state.remember_uidls(
            account=account.name, folder=account.folder, uidls=sorted(done), fence=fence.token
        )
    return [ref for ref in refs if ref.source_key not in taken | done]


async def _let_go(
    rt: Runtime,
    account: IncomingAccount,
    mailbox: Mailbox,
    uidvalidity: int | None,
    batch: Sequence[MessageRef],
    taken: list[MessageRef],
    kept: list[MessageRef],
    *,
    deletes: bool,
    remember: bool,
    lock: asyncio.Lock,
    fence: Fence,
) -> None:
    """Steps 4-5 for a batch whose fetched mails (``taken`` whole, ``kept`` as stubs) all got
    through steps 1-3: flag or delete them on the server (or, ``remember``: POP3 leaving them
    there, remember their UIDLs), then advance the fetch mark."""
    seen = kept if deletes else taken + kept
    if taken or seen:
        async with lock:  # checked right before the command, not before waiting for it
            await fence.check()
            if deletes and taken:
                await mailbox.delete(taken)
            if seen:
                await mailbox.mark_seen(seen)
    done = taken + kept
    if not done:
        return
    if remember:
        await rt.store.fetch_state.remember_uidls(
            account=account.name,
            folder=account.folder,
            uidls=[ref.source_key for ref in done],
            fence=fence.token,
        )
    mark = contiguous_mark(batch, {ref.uid for ref in done if ref.uid is not None})
    if mark is not None and uidvalidity is not None:
        await rt.store.fetch_state.advance(
            account=account.name,
            folder=account.folder,
            uidvalidity=uidvalidity,
            last_uid=mark,
            fence=fence.token,
        )
    if len(done) < len(batch):
        log.warning(
            "%s: the server listed %d mails it then did not hand over; they are tried again",
            account.name,
            len(batch) - len(done),
            extra={"account": account.name},
        )


async def _fetched(
    mailbox: Mailbox, batches: Sequence[Sequence[MessageRef]], max_size: int
) -> AsyncGenerator[list[FetchedMail] | int, None]:
    """The chunks of each batch in turn, each batch followed by its index (its end)."""
    for index, batch in enumerate(batches):
        async for chunk in _chunks(mailbox.fetch(batch, max_size=max_size)):
            yield chunk
        yield index


async def _next(
    items: AsyncIterator[list[FetchedMail] | int], lock: asyncio.Lock
) -> list[FetchedMail] | int | None:
    """The next item of ``items`` (None at the end), fetched holding the mailbox lock."""
    async with lock:
        return await anext(items, None)


async def _settle(upcoming: asyncio.Future[list[FetchedMail] | int | None] | None) -> None:
    """Let a fetch ahead finish (a command cut off halfway would leave the session unusable);
    cancel it only when the round itself is cancelled. Its result or error no longer matters."""
    if upcoming is None:
        return
    try:
        await asyncio.shield(upcoming)
    except asyncio.CancelledError:
        upcoming.cancel()
        raise
    except Exception:  # the round already failed or ended; this fetch is not used
        return


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


async def _insert_new(
    rt: Runtime, account: str, records: list[tuple[RawEmail, bytes]], *, look_up: bool
) -> list[tuple[RawEmail, bool]]:
    """Insert the records that are not twins of stored mails (``look_up``) or of an earlier
    one in the same chunk; in order, each as the stored record with True if this call
    created it."""
    keys = [(r.message_id, r.sha256) for r, _ in records if r.message_id is not None]
    twins = await rt.store.raw_emails.find_twins(account=account, keys=keys) if look_up else {}
    own: list[tuple[RawEmail, bytes]] = []
    twin_of: list[RawEmail | None] = []  # per record: the twin it is, or None to insert it
    for record, data in records:
        key = (record.message_id or "", record.sha256)
        twin = twins.get(key) if record.message_id is not None else None
        if twin is None or twin.source_key == record.source_key:
            own.append((record, data))
            twin_of.append(None)
            if record.message_id is not None:
                twins.setdefault(key, record)
        else:
            twin_of.append(twin)
    inserted = await rt.store.raw_emails.insert_many(records=own)
    # A twin from this chunk may have been stored before under its own key: use that record.
    actual = {mine.id: stored for (mine, _), (stored, _) in zip(own, inserted, strict=True)}
    pending = iter(inserted)
    result: list[tuple[RawEmail, bool]] = []
    for (record, _), twin in zip(records, twin_of, strict=True):
        if twin is None:
            result.append(next(pending))
            continue
        twin = actual.get(twin.id, twin)
        log.info(
            "%s: mail %s is %s again (same Message-ID and sha256); not stored twice",
            account,
            record.source_key,
            twin.source_key,
            extra={"account": account, "source_key": record.source_key, "twin": twin.id},
        )
        result.append((twin, False))
    return result


def _record(
    account: IncomingAccount, uidvalidity: int | None, mail: FetchedMail, max_size: int
) -> tuple[RawEmail, bytes]:
    """The record and bytes to store for a fetched mail (a stub for an incomplete one)."""
    data, truncated = mail.data, None
    if not mail.complete:
        data, truncated = stub_of(mail.data, size=mail.ref.size, limit=max_size)
    record = RawEmail(
        account=account.name,
        source_key=mail.ref.source_key,
        folder=account.folder,
        uidvalidity=uidvalidity,
        uid=mail.ref.uid,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        message_id=message_id_of(data),
        truncated=truncated,
    )
    return record, data


async def _store_and_announce(
    rt: Runtime,
    account: IncomingAccount,
    uidvalidity: int | None,
    mails: list[FetchedMail],
    max_size: int,
    twins_possible: bool,
) -> int:
    """Steps 1-3 for a chunk of mails; returns how many this call stored."""
    records = [_record(account, uidvalidity, mail, max_size) for mail in mails]
    stored = await _insert_new(rt, account.name, records, look_up=twins_possible)
    # A twin still "stored" (its round crashed before the confirm) is announced here, once.
    fresh = list({record.id: record for record, _ in stored if record.status == "stored"}.values())
    # Sent in order on one channel; the confirms are awaited together, not one by one.
    await publish_many(
        rt.broker,
        [
            MailReceived(
                raw_id=record.id,
                account=account.name,
                source_key=record.source_key,
                correlation_id=record.correlation_id,
            )
            for record in fresh
        ],
        routing_key=MAIL_RECEIVED,
    )
    metrics.mail_fetched(account.name, len(fresh))
    for record in fresh:
        extra = {"raw_id": record.id, "account": account.name, "source_key": record.source_key}
        log.info("mail announced", extra={**extra, "correlation_id": record.correlation_id})
    await rt.store.raw_emails.set_status_many(
        raw_ids=[record.id for record in fresh], status="announced", only_from=("stored",)
    )
    return sum(created for _, created in stored)
