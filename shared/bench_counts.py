"""MongoDB commands and RabbitMQ publishes counted per process, for the benchmarks.

Off unless ``MAILROOM_BENCH_COUNTS`` names a file prefix (``bench/e2e.py`` sets it). Then the
first store client of the process gets a PyMongo command listener (commands and their round
trips in microseconds, by command name), every AMQP publish of the
process is counted, and a thread writes the counts to ``<prefix>.<pid>`` as JSON twice a
second, so a benchmark can read them while the service runs and diff two readings (start-up
and shutdown commands then stay out of its figures). Nothing is counted, wrapped or written
when the variable is unset.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pymongo.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
)

ENV = "MAILROOM_BENCH_COUNTS"
WRITE_EVERY_SECONDS = 0.5


def command_key(event: CommandStartedEvent) -> str:
    """A command's name and collection ("update cases"), or its name alone ("ping")."""
    target = event.command.get(event.command_name)
    return f"{event.command_name} {target}" if isinstance(target, str) else event.command_name


WRITTEN_FIELDS = {"insert": "documents", "update": "updates", "delete": "deletes"}
"""Where a write command lists its statements (PyMongo puts a bulk write's batch there)."""


def write_statements(event: CommandStartedEvent) -> int:
    """The write statements a command carries: one per inserted document and per update or
    delete statement (an ``update_many`` statement counts once, however many documents it
    matches), one for a findAndModify, none for a read."""
    if event.command_name == "findAndModify":
        return 1
    field = WRITTEN_FIELDS.get(event.command_name)
    listed = event.command.get(field) if field else None
    return len(listed) if isinstance(listed, list) else 0


class KeyedCommands(CommandListener):
    """MongoDB commands by :func:`command_key`, and each one's round trip once answered:
    a subclass says where they go (``count``, ``timed``; both called under ``_lock``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[int, str] = {}

    def count(self, key: str) -> None:
        """One command ``key`` was sent."""
        raise NotImplementedError

    def timed(self, key: str, micros: int) -> None:
        """A command ``key`` was answered after ``micros``."""
        raise NotImplementedError

    def wrote(self, key: str, statements: int) -> None:
        """A command ``key`` carries ``statements`` write statements (kept where a subclass
        wants it: what a write costs a database is mostly per document written)."""

    def started(self, event: CommandStartedEvent) -> None:
        """Count the command and remember its key until it is answered."""
        key = command_key(event)
        written = write_statements(event)
        with self._lock:
            self._running[event.request_id] = key
            self.count(key)
            if written:
                self.wrote(key, written)

    def succeeded(self, event: CommandSucceededEvent) -> None:
        """Time the answered command."""
        self._ended(event.request_id, event.duration_micros)

    def failed(self, event: CommandFailedEvent) -> None:
        """Time the failed command."""
        self._ended(event.request_id, event.duration_micros)

    def _ended(self, request_id: int, micros: int) -> None:
        with self._lock:
            key = self._running.pop(request_id, None)
            if key is not None:
                self.timed(key, micros)


class Counts(KeyedCommands):
    """The counts of one process; written to its file by a daemon thread."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.commands: Counter[str] = Counter()
        self.micros: Counter[str] = Counter()
        self.writes: Counter[str] = Counter()
        self.publishes: Counter[str] = Counter()

    def count(self, key: str) -> None:
        """One more command ``key``."""
        self.commands[key] += 1

    def timed(self, key: str, micros: int) -> None:
        """Add the round trip to its key's total (where MongoDB time goes)."""
        self.micros[key] += micros

    def wrote(self, key: str, statements: int) -> None:
        """Add the write statements a command carries to its key's total."""
        self.writes[key] += statements

    def published(self, routing_key: str) -> None:
        """Count one AMQP publish, by routing key."""
        with self._lock:
            self.publishes[routing_key] += 1

    def write(self) -> None:
        """Replace the file with the counts so far (atomically: readers never see half)."""
        with self._lock:
            data = {
                "commands": dict(self.commands),
                "micros": dict(self.micros),
                "writes": dict(self.writes),
                "publishes": dict(self.publishes),
            }
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.path)

    def _write_forever(self) -> None:
        while True:
            time.sleep(WRITE_EVERY_SECONDS)
            # The bench may have removed its directory already: it no longer reads then.
            with contextlib.suppress(OSError):
                self.write()


_counts: Counts | None = None


def event_listeners() -> list[CommandListener]:
    """The command listeners for a new store client: the process's counter when
    ``MAILROOM_BENCH_COUNTS`` is set (started on first use), otherwise none."""
    global _counts
    prefix = os.environ.get(ENV)
    if not prefix:
        return []
    if _counts is None:
        _counts = Counts(Path(f"{prefix}.{os.getpid()}"))
        _count_publishes(_counts)
        threading.Thread(target=_counts._write_forever, name="bench-counts", daemon=True).start()
    return [_counts]


def _count_publishes(counts: Counts) -> None:
    """Count every AMQP publish of the process: FastStream's, ``publish_many``'s and the
    retry tiers' all end in aiormq's ``basic_publish``, the one place that sees them all."""
    # Imported here: every process opens the store, and only a counting one needs aiormq.
    import aiormq

    original = aiormq.Channel.basic_publish

    @functools.wraps(original)
    async def basic_publish(self: Any, *args: Any, **kwargs: Any) -> Any:
        counts.published(str(kwargs.get("routing_key", "")))
        return await original(self, *args, **kwargs)

    aiormq.Channel.basic_publish = basic_publish  # type: ignore[method-assign]
