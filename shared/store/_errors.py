"""PyMongo's errors, translated once, at the edge that owns the library.

Every repository derives from :class:`Repo`, whose public coroutine methods are wrapped so
that no PyMongo (or BSON, or GridFS) error leaves the store:

- the server cannot be reached, timed out, stepped down or has no primary, or the server
  labels the error retryable → :class:`StoreUnavailable` (a ``Transient``: an outage, which
  callers retry without limit of attempts and never send to the desk);
- a unique key collided where the repository did not give that a domain meaning →
  :class:`Duplicate`;
- anything else → :class:`StoreError` naming the operation (``RawEmailRepo.start_attempt``).

Repositories still catch the errors they give a meaning to (a duplicate case → the existing
case) inside their methods; only what escapes is translated.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bson.errors import BSONError
from gridfs.errors import GridFSError
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    DuplicateKeyError,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
    WTimeoutError,
)

from shared.errors import Duplicate, StoreError, StoreUnavailable

RETRYABLE_CODES = frozenset(
    {
        6,  # HostUnreachable
        7,  # HostNotFound
        50,  # MaxTimeMSExpired
        89,  # NetworkTimeout
        91,  # ShutdownInProgress
        189,  # PrimarySteppedDown
        262,  # ExceededTimeLimit
        9001,  # SocketException
        10107,  # NotWritablePrimary
        11600,  # InterruptedAtShutdown
        11602,  # InterruptedDueToReplStateChange
        13435,  # NotPrimaryNoSecondaryOk
        13436,  # NotPrimaryOrSecondary
    }
)
"""Server error codes the MongoDB drivers' specifications treat as "try again later"."""
DUPLICATE_KEY = 11000


def translate(exc: BaseException, operation: str) -> Exception | None:
    """Our error for a library error raised by ``operation``; None when ``exc`` is not one."""
    if isinstance(exc, (ConnectionFailure, ExecutionTimeout, WTimeoutError)):
        return StoreUnavailable(f"MongoDB unavailable during {operation}: {type(exc).__name__}")
    if isinstance(exc, DuplicateKeyError):
        return Duplicate("duplicate key", operation=operation)
    if isinstance(exc, BulkWriteError):
        return _bulk(exc, operation)
    if isinstance(exc, OperationFailure):
        if exc.code in RETRYABLE_CODES or _labelled_retryable(exc):
            return StoreUnavailable(
                f"MongoDB unavailable during {operation}: {type(exc).__name__} {exc.code}"
            )
        return StoreError(f"{type(exc).__name__} {exc.code}: {_short(exc)}", operation=operation)
    if isinstance(exc, (PyMongoError, BSONError, GridFSError)):
        return StoreError(f"{type(exc).__name__}: {_short(exc)}", operation=operation)
    return None


def _bulk(exc: BulkWriteError, operation: str) -> Exception:
    details = exc.details or {}
    if details.get("writeConcernErrors"):
        return StoreUnavailable(f"MongoDB unavailable during {operation}: write concern failed")
    codes = {int(e.get("code", 0)) for e in details.get("writeErrors", [])}
    if codes == {DUPLICATE_KEY}:
        return Duplicate("duplicate key", operation=operation)
    if codes & RETRYABLE_CODES:
        return StoreUnavailable(f"MongoDB unavailable during {operation}: {sorted(codes)}")
    return StoreError(f"bulk write failed with codes {sorted(codes)}", operation=operation)


def _labelled_retryable(exc: OperationFailure) -> bool:
    return exc.has_error_label("RetryableWriteError") or exc.has_error_label(
        "TransientTransactionError"
    )


def _short(exc: BaseException) -> str:
    # The server's message only: PyMongo's str() may append the whole reply document.
    text = str(exc).split(", full error:", 1)[0]
    return text[:300]


@contextmanager
def mongo_errors(operation: str) -> Iterator[None]:
    """Translate library errors raised inside the block (for code outside a :class:`Repo`
    method, e.g. an async generator that reads GridFS chunk by chunk)."""
    try:
        yield
    except (PyMongoError, BSONError, GridFSError) as exc:
        mapped = translate(exc, operation)
        assert mapped is not None
        raise mapped from exc


def _wrapped(operation: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    async def call(*args: Any, **kwargs: Any) -> Any:
        with mongo_errors(operation):
            return await method(*args, **kwargs)

    return call


class Repo:
    """Base of the repositories: every public coroutine method's library errors are
    translated (see the module docstring), with ``Class.method`` as the operation."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, member in list(vars(cls).items()):
            if not name.startswith("_") and inspect.iscoroutinefunction(member):
                setattr(cls, name, _wrapped(f"{cls.__name__}.{name}", member))
