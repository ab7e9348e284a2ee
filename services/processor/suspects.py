"""Finding the mail that crashes the processor without charging the mails around it.

A processor that dies (killed, out of memory on a big mail, a bug in a C extension) returns
its whole prefetch window to the queue, and RabbitMQ counts a delivery against every one of
those mails: ten crashes would send sixteen innocent mails to the desk as "delivery limit".
Instead each mail records that its processing started (``unfinished`` on the raw mail, reset
when the attempt ends). On a redelivery:

- a mail whose earlier attempt did not finish is a *suspect*: it is processed alone (no
  other mail of this processor runs meanwhile), so a crash now points at it; after
  ``MAX_SOLO_CRASHES`` such crashes it is the poison and goes to the desk with that reason;
- any other redelivered mail was only in the window: it is processed as usual, and once
  RabbitMQ has counted half its delivery limit against it, it is re-published as a fresh
  message (confirmed before the old one is acknowledged), so crashes of others never use up
  its deliveries.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import Enum

from shared.models.records import RawEmail
from shared.topology import DELIVERY_LIMIT

MAX_SOLO_CRASHES = 3
"""Crashes of a processor with the mail alone in it before the mail is held to be the cause:
more than one, so that a processor killed for another reason (a deploy, an operator) while a
suspect ran does not send a good mail to the desk."""
REFRESH_AFTER = DELIVERY_LIMIT // 2
"""Deliveries counted against an innocent mail before it is re-published fresh."""


class Verdict(Enum):
    """What to do with a delivered mail."""

    NORMAL = "normal"
    REFRESH = "refresh"
    SUSPECT = "suspect"
    POISON = "poison"


def verdict(record: RawEmail | None, *, redelivered: bool, delivery_count: int) -> Verdict:
    """The verdict for a delivery of the mail ``record`` (None: not read, a first delivery)."""
    if not redelivered or record is None or record.status == "processed":
        return Verdict.NORMAL
    if record.unfinished > 0:
        return Verdict.POISON if record.solo_runs >= MAX_SOLO_CRASHES else Verdict.SUSPECT
    return Verdict.REFRESH if delivery_count >= REFRESH_AFTER else Verdict.NORMAL


class Turns:
    """Many ordinary mails at once, or one suspect alone (a readers-writer lock)."""

    def __init__(self) -> None:
        self._running = 0
        self._alone = False
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        """An ordinary mail's turn: waits while a suspect runs."""
        async with self._changed:
            await self._changed.wait_for(lambda: not self._alone)
            self._running += 1
        try:
            yield
        finally:
            async with self._changed:
                self._running -= 1
                self._changed.notify_all()

    @asynccontextmanager
    async def alone(self) -> AsyncIterator[None]:
        """A suspect's turn: waits until nothing else runs, and keeps the rest waiting."""
        async with self._changed:
            await self._changed.wait_for(lambda: not self._alone and self._running == 0)
            self._alone = True
        try:
            yield
        finally:
            async with self._changed:
                self._alone = False
                self._changed.notify_all()
