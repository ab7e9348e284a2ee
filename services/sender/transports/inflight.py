"""Whether a failed HTTP request may have reached the server: the test behind the HTTP
transports' ``OutcomeUnknown`` (Graph's ``sendMail``, JMAP's ``EmailSubmission/set``).

Only a failure to get a connection proves the request was never sent. Any loss after that is
a request in flight: httpcore writes the headers and the body and, on a write error, still
waits for an answer (a server may refuse early), so a connection cut while sending or while
waiting surfaces as ``ReadError``, ``ReadTimeout`` or ``RemoteProtocolError`` ("server
disconnected without sending a response"), and the server may have acted on the whole
request before the cut. An HTTP answer (429, 5xx, a refusal) is no loss: the server said what
it did.

httpx error                                            → the request
├── ConnectError (DNS, refused, TLS handshake),        → never sent
│   ConnectTimeout, PoolTimeout, UnsupportedProtocol,
│   ProxyError
└── any other transport error (ReadTimeout, ReadError, → may have reached the server
    RemoteProtocolError, WriteError, WriteTimeout, …)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from services.sender.transport import OutcomeUnknown
from shared.errors import Transient, chain

NOT_SENT: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.ProxyError,
)
"""Failures before a connection to the server existed: nothing of the request left."""


def in_flight(exc: BaseException) -> bool:
    """Whether ``exc`` (a client's Mailroom error, httpx's error behind it) is the loss of a
    request that may have reached the server; False for an answer, a token or connect
    failure, or anything without an httpx transport error behind it."""
    for current in chain(exc):
        if isinstance(current, httpx.TransportError):
            return not isinstance(current, NOT_SENT)
    return False


@contextmanager
def maybe_sent(what: str) -> Iterator[None]:
    """Around the request that submits a mail (``what`` names it): a Transient that is the
    loss of that request in flight becomes OutcomeUnknown, so the sender checks the mail
    instead of sending it twice; any other error passes unchanged."""
    try:
        yield
    except Transient as exc:
        if not in_flight(exc):
            raise
        raise OutcomeUnknown(f"{exc}, after {what} was sent: it may have been accepted") from exc
