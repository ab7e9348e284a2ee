"""One fetch round for one account: take new mail, store it raw, announce it, then let go.

The round knows no protocol: the account's mailbox adapter lists what is new after the stored
cursor, and says which cursor to store once mails are done (see docs/transports.md).

Each step runs for a chunk of fetched mails at once (one insert, the publishes' confirms
awaited together), and the bookkeeping once per batch (one status update, one mark-done, one
fetch-state write), because per-mail round trips would cap the fetcher far below what the
server delivers; and while one chunk is stored and announced the next one is already being
fetched (one mailbox command at a time, and only next to a small chunk, so memory holds at
most one large mail). For every single mail the order holds, and a crash (or an error) after
any step loses no mail and makes no duplicate case:

1. **store** the raw bytes under the unique key (account, source key).
   Crash before: the mail is still on the server, after the stored cursor; the next round
   takes it again. Crash after: the next round's insert finds the stored record instead
   of making a second one.
2. **publish** ``mail.received`` and wait for the broker's confirm, but only while the
   record's status is still ``stored``. Crash before the confirm: the record stays
   ``stored``, so the next round publishes it.
3. **per batch, mark announced** (``stored`` → ``announced`` only, so a processor that was
   faster is never overwritten), one update for the whole batch. Crash between 2 and 3:
   the batch is listed again (the cursor did not move), its records are still ``stored``
   and are published once more; the processor is idempotent per raw mail (it skips a
   processed one and keeps one case per raw mail), so no second case appears.
4. **per batch, mark done** on the server (the account's disposal: flag seen, move or
   delete), only for mails that got through 1-3. Crash before: the mails stay on the server
   and are listed again; steps 1-3 find them stored and announced and do nothing but repeat
   this step.
5. **per batch, store the cursor** the listing gives for the mails done so far (IMAP: the
   UID mark below which every listed mail was taken; POP3 keeping mail: the taken UIDLs).
   Crash before: the batch is listed again and, as above, only step 4 repeats (a deleted
   mail is simply not listed). A listed mail the server did not hand over holds the cursor
   back, so it is retried rather than skipped.

When the listing says the same mail may be stored under another source key (IMAP after a
renumbering, POP3 whose UIDLs can change unnoticed), it is caught by its Message-ID and sha256
together (its **twin**, looked up in MongoDB only then): it is not stored again, and only
announced if the twin itself never was; then it is marked done like any other. A mail
without a Message-ID is told apart by its key alone.

A mail above the maximum size is never downloaded whole: its header block becomes a stub
(the headers, a plain-text body saying why) that is stored and announced like any mail, so
a case shows it; the original stays on the server (only ever flagged seen).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from email import policy
from email.parser import BytesHeaderParser

from services.fetcher.deps import FetcherDeps
from services.fetcher.fence import NO_FENCE, Fence
from shared import metrics
from shared.broker import publish_many
from shared.mailbox import Disposal, FetchedMail, Listing, Mailbox, MessageRef
from shared.models.config import IncomingAccount
from shared.models.messages import MailReceived
from shared.models.records import RawEmail
from shared.topology import MAIL_RECEIVED

log = logging.getLogger(__name__)

BATCH_SIZE = 100
"""Mails per commit unit: recorded announced, marked done together, then the cursor moves."""
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


async def fetch_once(
    deps: FetcherDeps, account: IncomingAccount, mailbox: Mailbox, *, fence: Fence = NO_FENCE
) -> int:
    """Take the account's new mail; return how many mails were stored for the first time.

    ``fence`` (the account's lease, see ``services.fetcher.fence``) is checked before mail is
    marked done and named in every fetch-state write: a round that lost its lease raises
    LeaseLost there instead of touching the mailbox or the cursor.
    """
    await mailbox.connect()
    state = await deps.repos().fetch_state.get(account=account.name, folder=account.folder)
    listing = await mailbox.list_new(state.cursor)
    refs = list(listing.refs)
    batches = [refs[i : i + BATCH_SIZE] for i in range(0, len(refs), BATCH_SIZE)]
    lock = asyncio.Lock()  # one mailbox command at a time
    done = _Done(
        deps,
        account,
        mailbox,
        listing,
        disposal=account.disposal(deps.config().settings.delete_read_messages),
        lock=lock,
        fence=fence,
    )
    if not batches:
        # A new or renumbered folder's cursor is kept even when it held nothing.
        await done.save_cursor()
        return 0
    max_size = int(deps.config().settings.max_mail_size_mb * 1024 * 1024)
    created = 0
    fetched = _fetched(mailbox, batches, max_size)
    upcoming: asyncio.Future[list[FetchedMail] | int | None] | None = None
    try:
        upcoming = asyncio.ensure_future(_next(fetched, lock))
        while (item := await upcoming) is not None:
            # Fetch ahead only next to a small chunk, so memory holds one large mail at most.
            light = isinstance(item, int) or sum(len(m.data) for m in item) < STORE_MAX_BYTES
            upcoming = asyncio.ensure_future(_next(fetched, lock)) if light else None
            if isinstance(item, list):
                stored, fresh = await _store_and_announce(
                    deps, account, item, max_size, listing.twins_possible
                )
                created += stored
                done.add(item, fresh)
            else:
                await done.let_go(batches[item], last=item == len(batches) - 1)
            if upcoming is None:
                upcoming = asyncio.ensure_future(_next(fetched, lock))
    finally:
        await _settle(upcoming)
        await fetched.aclose()
    log.info(
        "%s: %d mails listed, %d new",
        account.name,
        len(refs),
        created,
        extra={"account": account.name, "listed": len(refs), "new": created},
    )
    return created


class _Done:
    """Steps 3-5 of a round, once per batch: what the batch's chunks stored and announced
    is recorded as announced, marked done on the server, and the cursor moves."""

    def __init__(
        self,
        deps: FetcherDeps,
        account: IncomingAccount,
        mailbox: Mailbox,
        listing: Listing,
        *,
        disposal: Disposal,
        lock: asyncio.Lock,
        fence: Fence,
    ) -> None:
        self._deps = deps
        self._account = account
        self._mailbox = mailbox
        self._listing = listing
        self._disposal: Disposal = disposal
        self._lock = lock
        self._fence = fence
        self._taken: list[MessageRef] = []  # this batch, whole
        self._kept: list[MessageRef] = []  # this batch, stubs: the original stays
        self._announced: list[str] = []  # this batch's raw ids published by this round
        self._done: set[str] = set()  # source keys of this round's finished batches
        self._saved: str | None = None  # the cursor this round stored last

    def add(self, mails: Sequence[FetchedMail], announced: Sequence[str]) -> None:
        """A chunk got through steps 1-2: remember it for the batch's end."""
        self._taken.extend(mail.ref for mail in mails if mail.complete)
        self._kept.extend(mail.ref for mail in mails if not mail.complete)
        self._announced.extend(announced)

    async def let_go(self, batch: Sequence[MessageRef], *, last: bool) -> None:
        """Steps 3-5 for a batch whose fetched mails all got through steps 1-2 (the cursor
        after the ``last`` batch only, where the listing asks so)."""
        taken, kept, announced = self._taken, self._kept, self._announced
        self._taken, self._kept, self._announced = [], [], []
        await self._deps.repos().raw_emails.set_status_many(
            raw_ids=announced, status="announced", only_from=("stored",)
        )
        if taken or kept:
            async with self._lock:  # checked right before the command, not before waiting
                await self._fence.check()
                guard = self._fence.guard  # and again before each further command it needs
                if taken:
                    await self._mailbox.mark_done(taken, disposal=self._disposal, guard=guard)
                if kept:
                    await self._mailbox.mark_done(kept, disposal="seen", guard=guard)
        self._done.update(ref.source_key for ref in (*taken, *kept))
        if last or self._listing.cursor_every_batch:
            await self.save_cursor()
        missing = len(batch) - len(taken) - len(kept)
        if missing:
            log.warning(
                "%s: the server listed %d mails it then did not hand over; they are tried again",
                self._account.name,
                missing,
                extra={"account": self._account.name},
            )

    async def save_cursor(self) -> None:
        """Step 5: one fetch-state write, fenced, when the cursor moved."""
        cursor = self._listing.cursor_after(self._done)
        if cursor is None or cursor == self._saved:
            return
        await self._deps.repos().fetch_state.save_cursor(
            account=self._account.name,
            folder=self._account.folder,
            cursor=cursor,
            fence=self._fence.token,
        )
        self._saved = cursor


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
    deps: FetcherDeps, account: str, records: list[tuple[RawEmail, bytes]], *, look_up: bool
) -> list[tuple[RawEmail, bool]]:
    """Insert the records that are not twins of stored mails (``look_up``) or of an earlier
    one in the same chunk; in order, each as the stored record with True if this call
    created it."""
    keys = [(r.message_id, r.sha256) for r, _ in records if r.message_id is not None]
    repo = deps.repos().raw_emails
    twins = await repo.find_twins(account=account, keys=keys) if look_up else {}
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
    inserted = await repo.insert_many(records=own)
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


def _record(account: IncomingAccount, mail: FetchedMail, max_size: int) -> tuple[RawEmail, bytes]:
    """The record and bytes to store for a fetched mail (a stub for an incomplete one)."""
    data, truncated = mail.data, None
    if not mail.complete:
        data, truncated = stub_of(mail.data, size=mail.ref.size, limit=max_size)
    record = RawEmail(
        account=account.name,
        source_key=mail.ref.source_key,
        folder=account.folder,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        message_id=message_id_of(data),
        truncated=truncated,
    )
    return record, data


async def _store_and_announce(
    deps: FetcherDeps,
    account: IncomingAccount,
    mails: list[FetchedMail],
    max_size: int,
    twins_possible: bool,
) -> tuple[int, list[str]]:
    """Steps 1-2 for a chunk of mails; returns how many this call stored, and the raw ids
    it announced (marked announced at the batch's end)."""
    records = [_record(account, mail, max_size) for mail in mails]
    stored = await _insert_new(deps, account.name, records, look_up=twins_possible)
    # A twin still "stored" (its round crashed before the confirm) is announced here, once.
    fresh = list({record.id: record for record, _ in stored if record.status == "stored"}.values())
    # Sent in order on one channel; the confirms are awaited together, not one by one.
    await publish_many(
        deps.publisher,
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
    return sum(created for _, created in stored), [record.id for record in fresh]
