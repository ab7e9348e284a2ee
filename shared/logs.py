"""Logging for every service: JSON lines, with every known secret redacted, and the
correlation id of the mail being worked on.

The correlation id follows one mail from fetch to case to reply: the fetcher gives each raw
mail one, every message about that mail carries it (body field and AMQP property), and
:class:`CorrelationMiddleware` puts the consumed message's id into a context variable that
the JSON formatter writes as ``correlation_id`` on every record logged while handling it.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from faststream import BaseMiddleware
from faststream.message import StreamMessage

# REDACTOR and SecretRedactor live in their own module (free of FastStream); re-exported.
from shared.redact import REDACTOR as REDACTOR
from shared.redact import STANDARD_RECORD_KEYS
from shared.redact import SecretRedactor as SecretRedactor

CORRELATION_ID: ContextVar[str | None] = ContextVar("mailroom_correlation_id", default=None)
"""The correlation id of the mail the current task works on, if any."""


@contextmanager
def correlation(correlation_id: str | None) -> Iterator[None]:
    """Log with ``correlation_id`` inside the block (tasks started inside inherit it)."""
    token = CORRELATION_ID.set(correlation_id)
    try:
        yield
    finally:
        CORRELATION_ID.reset(token)


class CorrelationMiddleware(BaseMiddleware):
    """Every consumer logs with the correlation id of the message it handles."""

    async def consume_scope(self, call_next: Any, msg: StreamMessage[Any]) -> Any:
        """Run the handler inside :func:`correlation` of the message."""
        with correlation(msg.correlation_id or None):
            return await call_next(msg)


class JsonFormatter(logging.Formatter):
    """One JSON object per line with time, level, logger, message and extras."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as JSON."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in STANDARD_RECORD_KEYS})
        if "correlation_id" not in entry and (correlation_id := CORRELATION_ID.get()):
            entry["correlation_id"] = correlation_id
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO", *, json_lines: bool = True) -> None:
    """Install the redacting handler on the root logger (idempotent)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if getattr(handler, "_mailroom", False):
            return
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(REDACTOR)
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    handler._mailroom = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
