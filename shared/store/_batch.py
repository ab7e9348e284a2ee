"""Group commit: the same kind of small read or write, asked by many mails at one moment, goes
to MongoDB as one command.

A processor works on up to 16 mails at once, and each makes the same few commands (count the
attempt, read the mail, read its thread, insert its message, set its status). Sent one by one,
every mail pays a round trip per command, and the database pays its per-command cost for each:
on the local stand-in that cost, not the documents, was most of the pipeline's CPU. A
:class:`Batcher` sends a call at once when nothing of its kind is in flight, and otherwise
collects calls until the command in flight returns, then sends them all together. A lone
mail therefore waits for nothing; under load a command carries as many calls as arrived
during one round trip.

Nothing about the guarantees changes: every caller still waits until its own write is
acknowledged (or its read answered) before it goes on, so a crash at any moment leaves each
mail exactly where an unbatched write would have. A failure of the whole command (MongoDB
away) reaches every caller in it; a failure of one write in an unordered bulk write (a
duplicate key) reaches only the caller that asked for it, as the error PyMongo raises for a
single write, so the repositories' handling of it is unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from pymongo import InsertOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from shared.store._base import Doc
from shared.store._errors import DUPLICATE_KEY

T = TypeVar("T")
R = TypeVar("R")

BATCH_LIMIT = 256
"""Calls per command at most: a bounded command, and no caller waits behind a huge one."""

WriteOp = InsertOne[Doc] | UpdateOne


class Batcher(Generic[T, R]):
    """Calls made while a ``run`` is in flight go together into the next ``run``.

    ``run`` takes the calls' items in order and returns one result per item; a result that is
    an exception is raised to that item's caller only, an exception ``run`` raises to all.
    ``limit``: items per ``run`` at most. ``runs``: how many may be in flight at once (one
    keeps a single command of each kind on the wire; more let a slow command not hold up
    the next).
    """

    def __init__(
        self,
        run: Callable[[list[T]], Awaitable[Sequence[R | Exception]]],
        *,
        limit: int = 0,
        runs: int = 1,
    ) -> None:
        self._run = run
        self._limit = limit or BATCH_LIMIT
        self._runs = runs
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._senders: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        """The result of ``item``, once the command that carries it returned."""
        loop = asyncio.get_running_loop()
        if any(sender.get_loop() is not loop for sender in self._senders):
            # A store used from another event loop (tests): nothing of the old one can finish.
            self._waiting, self._senders = [], set()
        future: asyncio.Future[R] = loop.create_future()
        self._waiting.append((item, future))
        if len(self._senders) < self._runs:
            # A task of its own: a caller cancelled while waiting must not cancel the others'.
            self._senders.add(loop.create_task(self._send()))
        return await future

    async def _send(self) -> None:
        try:
            await self._send_waiting()
        finally:
            # Here, not in a done callback: that runs a turn later, and a call made in between
            # would count this sender as still running and wait for nothing.
            self._senders.discard(asyncio.current_task())

    async def _send_waiting(self) -> None:
        while self._waiting:
            batch = self._waiting[: self._limit]
            del self._waiting[: self._limit]
            try:
                results = await self._run([item for item, _ in batch])
            except Exception as exc:  # handed to every caller, whose repository maps it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            except BaseException:  # cancelled: the service stops, and so do its callers
                for _, future in [*batch, *self._waiting]:
                    future.cancel()
                self._waiting.clear()
                raise
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():  # its caller stopped waiting
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)


class Writes:
    """Single-document writes on one collection, sent together as an unordered bulk write.

    Only for writes whose caller needs no counts back (a bulk write reports matched and
    modified documents for the whole command, not per write).
    """

    def __init__(self, coll: AsyncCollection[Doc]) -> None:
        self._coll = coll
        self._batcher: Batcher[WriteOp, None] = Batcher(self._run)

    async def write(self, op: WriteOp) -> None:
        """Apply ``op``; raises what PyMongo raises for that one write (DuplicateKeyError...)."""
        await self._batcher.submit(op)

    async def _run(self, ops: list[WriteOp]) -> list[Exception | None]:
        try:
            await self._coll.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            details = exc.details or {}
            if details.get("writeConcernErrors"):
                raise
            failed = {int(e["index"]): e for e in details.get("writeErrors", [])}
            return [_write_error(failed[i]) if i in failed else None for i in range(len(ops))]
        return [None] * len(ops)


def _write_error(error: Doc) -> Exception:
    """The error PyMongo raises for one failed write, from a bulk write's ``writeErrors``."""
    code = int(error.get("code", 0))
    message = str(error.get("errmsg", "write failed"))
    if code == DUPLICATE_KEY:
        return DuplicateKeyError(message, code, error)
    return OperationFailure(message, code, error)


class Lookups:
    """Reads of documents by the values of one field: the values many callers ask for at one
    moment are read with one ``find`` (``$in``), and each caller gets the documents of its own
    (the same dicts when two callers ask for the same document: read them, do not change them).
    """

    def __init__(
        self, coll: AsyncCollection[Doc], field: str, projection: Doc | None = None
    ) -> None:
        self._coll = coll
        self._field = field
        self._projection = projection
        self._batcher: Batcher[tuple[frozenset[Any], int], list[Doc] | None] = Batcher(self._run)

    async def find(self, values: Iterable[Any], *, limit: int = 0) -> list[Doc] | None:
        """The documents whose field holds one of ``values``.

        ``limit``: take at most this many; None when more match (as a read with a limit would
        show it), and also when the command carrying this call reached the sum of its calls'
        limits (it may have been cut short).
        """
        wanted = frozenset(values)
        if not wanted:
            return []
        return await self._batcher.submit((wanted, limit))

    async def one(self, value: Any) -> Doc | None:
        """The document whose field is ``value`` (for a unique field, such as ``_id``)."""
        found = await self.find([value])
        return found[0] if found else None

    async def _run(self, calls: list[tuple[frozenset[Any], int]]) -> list[list[Doc] | None]:
        values = sorted(frozenset().union(*(wanted for wanted, _ in calls)), key=repr)
        limited = all(limit for _, limit in calls)
        cap = sum(limit + 1 for _, limit in calls) if limited else 0
        query = {self._field: {"$in": values}}
        docs = [d async for d in self._coll.find(query, self._projection, limit=cap)]
        if cap and len(docs) >= cap:
            return [None] * len(calls)
        answers: list[list[Doc] | None] = []
        for wanted, limit in calls:
            own = [d for d in docs if d.get(self._field) in wanted]
            answers.append(None if limit and len(own) > limit else own)
        return answers
