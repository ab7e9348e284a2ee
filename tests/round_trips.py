"""Counting round trips: MongoDB commands (PyMongo command monitoring) and RabbitMQ publishes.

Tests and benchmarks assert and print how many round trips a mail costs, never how long it
takes. ``counting()`` counts everything this process sends while it is open:

- ``commands``: every MongoDB command started, by name and collection (heartbeats are not
  commands);
- ``messages``: every message published to RabbitMQ;
- ``confirms``: the publisher-confirm round trips those messages took: a publish that waits
  for its own confirm is one, messages written together and confirmed together (one batch,
  written in one step of the event loop by one task) are one.

PyMongo only lets listeners be registered before a client is made and never removed: one
listener is registered at import, and forwards to the counters that are open. Import this
module before the store opens its client.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiormq
from pymongo import monitoring

from shared.bench_counts import KeyedCommands


@dataclass
class RoundTrips:
    """What was sent while counting."""

    commands: Counter[str] = field(default_factory=Counter)
    micros: Counter[str] = field(default_factory=Counter)
    """Time from sending each kind of command to its answer (for profiles, never asserted)."""
    messages: int = 0
    confirms: int = 0
    _batches: set[int] = field(default_factory=set)

    @property
    def command_count(self) -> int:
        """All MongoDB commands."""
        return sum(self.commands.values())

    def per_mail(self, mails: int) -> str:
        """One line: commands, messages and confirm round trips per mail."""
        return (
            f"MongoDB commands/mail {self.command_count / mails:.2f}, "
            f"publishes/mail {self.messages / mails:.2f} "
            f"(confirm round trips/mail {self.confirms / mails:.2f}); "
            f"by command: {dict(self.commands.most_common())}"
        )

    def time_shares(self) -> str:
        """Each kind of command's share of the time spent waiting for MongoDB."""
        total = sum(self.micros.values()) or 1
        return ", ".join(f"{k} {v / total:.0%}" for k, v in self.micros.most_common())


_OPEN: list[RoundTrips] = []


class _Commands(KeyedCommands):
    """Forwards every command to the counters that are open."""

    def count(self, key: str) -> None:
        for counter in _OPEN:
            counter.commands[key] += 1

    def timed(self, key: str, micros: int) -> None:
        for counter in _OPEN:
            counter.micros[key] += micros


monitoring.register(_Commands())

_ORIGINAL_PUBLISH = aiormq.Channel.basic_publish


def _counted_publish(self: aiormq.Channel, *args: Any, **kwargs: Any) -> Any:
    # A plain function returning the coroutine: it runs when the publish is asked for, in
    # the asking task, so the messages of one batch are seen in the same loop step.
    for counter in _OPEN:
        counter.messages += 1
        if kwargs.get("wait", True):
            counter.confirms += 1
            continue
        task = id(asyncio.current_task())
        if task not in counter._batches:
            counter.confirms += 1
            counter._batches.add(task)
            asyncio.get_running_loop().call_soon(counter._batches.discard, task)
    return _ORIGINAL_PUBLISH(self, *args, **kwargs)


@contextmanager
def counting() -> Iterator[RoundTrips]:
    """Count the round trips of this process until the block ends."""
    counter = RoundTrips()
    _OPEN.append(counter)
    patched: Callable[..., Any] = _counted_publish
    aiormq.Channel.basic_publish = patched  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        _OPEN.remove(counter)
        if not _OPEN:
            aiormq.Channel.basic_publish = _ORIGINAL_PUBLISH  # type: ignore[method-assign]
