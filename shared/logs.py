"""Logging for every service: one format per process, every known secret redacted, and the
service, account and correlation id of the work being done on every record.

One format per process: JSON lines when ``MAILROOM_LOG_JSON`` is true (the image's default),
otherwise one human line per record (``TIME LEVEL SERVICE LOGGER: message key=value ...``),
coloured only when stderr is a terminal and ``NO_COLOR`` is unset. Every library's records
(uvicorn, FastStream, aio_pika, aiormq, pymongo, warnings) go through the same handler:
:func:`configure_logging` takes over the handlers libraries install on their own loggers, and
uvicorn is started without its logging config (:data:`UVICORN_LOG_CONFIG`).

The correlation id follows one mail from fetch to case to reply: the fetcher gives each raw
mail one, every message about that mail carries it (body field and AMQP property), and
:class:`CorrelationMiddleware` puts the consumed message's id (and its account, when the
message names one) into context variables that every record logged while handling it carries.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

from faststream import BaseMiddleware
from faststream.message import StreamMessage

# REDACTOR and SecretRedactor live in their own module (free of FastStream); re-exported.
from shared.redact import REDACTOR as REDACTOR
from shared.redact import STANDARD_RECORD_KEYS
from shared.redact import SecretRedactor as SecretRedactor

CORRELATION_ID: ContextVar[str | None] = ContextVar("mailroom_correlation_id", default=None)
"""The correlation id of the mail the current task works on, if any."""
ACCOUNT: ContextVar[str | None] = ContextVar("mailroom_account", default=None)
"""The incoming account the current task works for, if any."""
SERVICE: ContextVar[str | None] = ContextVar("mailroom_service", default=None)
"""The service the current task belongs to (``run all`` runs four in one process)."""

UVICORN_LOG_CONFIG: None = None
"""uvicorn's ``log_config``: none, so it installs no handlers and its records (``uvicorn``,
``uvicorn.error``, ``uvicorn.access``) reach the root handler like everyone else's."""

CONTEXT_KEYS = ("service", "account", "correlation_id")
"""Record attributes :class:`ContextFilter` fills in, in the order the human format shows them."""

_MAX_SNIFFED_BODY = 64 * 1024
"""Bodies larger than this are not parsed for an account (ours are small references)."""


class _Process:
    """What the process as a whole is: the service name when no task names another."""

    service = "mailroom"


@contextmanager
def log_context(
    *, service: str | None = None, account: str | None = None, correlation_id: str | None = None
) -> Iterator[None]:
    """Log with the given service, account and correlation id inside the block (tasks started
    inside inherit them); values left ``None`` keep what the surrounding context has."""
    tokens = [
        (var, var.set(value))
        for var, value in ((SERVICE, service), (ACCOUNT, account), (CORRELATION_ID, correlation_id))
        if value is not None
    ]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


@contextmanager
def correlation(correlation_id: str | None) -> Iterator[None]:
    """Log with ``correlation_id`` inside the block (``None`` clears it)."""
    token = CORRELATION_ID.set(correlation_id)
    try:
        yield
    finally:
        CORRELATION_ID.reset(token)


def _account_of(body: bytes) -> str | None:
    """The ``account`` field of a JSON message body, if it has one."""
    if not body.startswith(b"{") or len(body) > _MAX_SNIFFED_BODY:
        return None
    try:
        decoded = json.loads(body)
    except ValueError:
        return None
    account = decoded.get("account") if isinstance(decoded, dict) else None
    return account if isinstance(account, str) else None


class CorrelationMiddleware(BaseMiddleware):
    """Every consumer logs with the correlation id (and account) of the message it handles."""

    async def consume_scope(self, call_next: Any, msg: StreamMessage[Any]) -> Any:
        """Run the handler inside :func:`correlation` of the message and its account."""
        with correlation(msg.correlation_id or None), log_context(account=_account_of(msg.body)):
            return await call_next(msg)


def service_middleware(service: str) -> type[BaseMiddleware]:
    """A consumer middleware that logs under ``service`` (for the routers of one service when
    several share a process and a broker)."""

    class ServiceMiddleware(BaseMiddleware):
        async def consume_scope(self, call_next: Any, msg: StreamMessage[Any]) -> Any:
            with log_context(service=service):
                return await call_next(msg)

    ServiceMiddleware.__name__ = ServiceMiddleware.__qualname__ = f"ServiceMiddleware[{service}]"
    return ServiceMiddleware


class ContextFilter(logging.Filter):
    """Puts the service, account and correlation id of the current context on each record
    (values a record already carries, given as ``extra``, win)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the context attributes (always keeps the record)."""
        current = {
            "service": SERVICE.get() or _Process.service,
            "account": ACCOUNT.get(),
            "correlation_id": CORRELATION_ID.get(),
        }
        for key, value in current.items():
            if getattr(record, key, None) is None:
                setattr(record, key, value)
        return True


_NOT_EXTRAS = STANDARD_RECORD_KEYS | {"color_message"}
"""uvicorn passes its message again with colour codes as ``color_message``: never shown."""


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    """The record's own attributes beyond the standard ones, without empty values."""
    return {
        k: v for k, v in vars(record).items() if k not in _NOT_EXTRAS and v is not None and v != ""
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, service, logger, message, then the extras
    (account and correlation id among them when there are)."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as JSON."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "service": getattr(record, "service", None) or _Process.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_extras(record))
        if "correlation_id" not in entry and (correlation_id := CORRELATION_ID.get()):
            entry["correlation_id"] = correlation_id
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str)


_COLOURS = {"DEBUG": "36", "INFO": "32", "WARNING": "33", "ERROR": "31", "CRITICAL": "91"}


def _human_value(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if not text or any(c in text for c in ' "=\n') else text


class HumanFormatter(logging.Formatter):
    """``2026-01-31T12:00:00.123Z INFO    fetcher services.fetcher.ingest: mail announced
    account=support correlation_id=...``: one line per record; a traceback or a multi-line
    message continues on lines indented by two spaces, so each record starts with its time."""

    def __init__(self, *, colour: bool = False) -> None:
        super().__init__()
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as one human line (plus indented continuation lines)."""
        moment = datetime.fromtimestamp(record.created, UTC)
        level = f"{record.levelname:<7}"
        if self.colour and (code := _COLOURS.get(record.levelname)):
            level = f"\x1b[{code}m{level}\x1b[0m"
        extras = _extras(record)
        service = extras.pop("service", None) or _Process.service
        ordered = [(k, extras.pop(k)) for k in CONTEXT_KEYS if k in extras] + list(extras.items())
        fields = "".join(f" {k}={_human_value(v)}" for k, v in ordered)
        line = (
            f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z {level} {service} "
            f"{record.name}: {record.getMessage()}{fields}"
        )
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line = f"{line}\n{record.exc_text}"
        return line.replace("\n", "\n  ")


def _wants_colour(stream: TextIO) -> bool:
    """Colour only for a person at a terminal who did not ask for none (no-color.org)."""
    return "NO_COLOR" not in os.environ and hasattr(stream, "isatty") and stream.isatty()


def _adopt_library_loggers(ours: logging.Handler) -> None:
    """Remove the handlers libraries put on their own loggers (FastStream's coloured one on
    stdout/stderr, uvicorn's when its config ran) and let their records reach the root handler."""
    for logger in list(logging.root.manager.loggerDict.values()):
        if not isinstance(logger, logging.Logger):
            continue
        for handler in list(logger.handlers):
            if handler is not ours and isinstance(handler, logging.StreamHandler):
                logger.removeHandler(handler)
                logger.propagate = True


def configure_logging(
    level: str = "INFO",
    *,
    json_lines: bool = True,
    service: str | None = None,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send every record of the process to one redacting handler on stderr, in one format.

    Called again (tests build many stacks in one process), it updates that handler's format
    and the process's service name instead of adding a second handler.
    """
    if service:
        _Process.service = service
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_mailroom", False)), None)
    if handler is None:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.addFilter(ContextFilter())
        handler.addFilter(REDACTOR)
        handler._mailroom = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    elif stream is not None and isinstance(handler, logging.StreamHandler):
        handler.setStream(stream)
    target = getattr(handler, "stream", sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json_lines else HumanFormatter(colour=_wants_colour(target))
    )
    _adopt_library_loggers(handler)
    logging.captureWarnings(True)
    root.setLevel(level.upper())
    # PyMongo's DEBUG records carry whole command documents (password and token hashes,
    # mail headers): MAILROOM_LOG_LEVEL=DEBUG must not turn them on.
    logging.getLogger("pymongo").setLevel(max(logging.INFO, root.level))
    return handler
