"""Mailroom's error tree. Adapters translate library errors into it; handlers catch only these.

MailroomError
├── Transient            retry later with backoff (server down, timeout, SMTP 4xx)
├── Permanent            no retry: record the reason, dead-letter (unparseable, SMTP 5xx)
│   └── MailRejected     an incoming-mail script refused the mail
│   └── StoreUnavailable MongoDB cannot be reached, timed out or has no primary
├── StoreError           MongoDB refused an operation (names it); not the mail's fault
│   └── Duplicate        a unique key a repository did not expect to collide
├── ConfigRejected       a settings write that would break a typed view
├── LeaseLost            a fetcher no longer holds an account's lease: it must not touch it
└── SecretsUnavailable   secrets are needed but no key is configured
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator


class MailroomError(Exception):
    """Base of every error Mailroom raises on purpose."""


class Transient(MailroomError):
    """A failure that may pass: the message is retried later."""


class Permanent(MailroomError):
    """A failure that will not pass by retrying: the message goes to the failed-mail desk."""


class StoreUnavailable(Transient):
    """MongoDB is unreachable, timed out, or has no primary: an outage, retried without limit."""


class StoreError(MailroomError):
    """MongoDB refused an operation for another reason; ``operation`` names it.

    Neither Transient nor Permanent: it says nothing about the mail, so the services log it
    as the failure of that operation (see each handler for what it does with one).
    """

    def __init__(self, message: str, *, operation: str) -> None:
        super().__init__(f"{operation}: {message}")
        self.operation = operation


class Duplicate(StoreError):
    """A unique key collided where the repository did not turn that into its domain meaning
    (a second case for a mail, a second lease holder); the operation is named."""


class MailRejected(Permanent):
    """An incoming-mail script refused the mail; ``script`` names it."""

    def __init__(self, reason: str, *, script: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.script = script

    def __str__(self) -> str:
        return f"rejected by script {self.script!r}: {self.reason}"


class ConfigRejected(MailroomError):
    """A configuration change was refused; the message says what to fix."""


class LeaseLost(MailroomError):
    """This fetcher instance lost the account's lease (another holds a newer fencing token):
    the mailbox must not be changed and the fetch state not written."""


class SecretsUnavailable(MailroomError):
    """A secret must be stored or read but MAILROOM_SECRET_KEY is not set."""


class NotFound(MailroomError):
    """The named object does not exist."""


def chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the errors behind it, nearest first: libraries wrap the failure in their own
    errors (``raise ... from exc``, or ``from None``, which still keeps the context)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:  # chains may be cyclic
        yield current
        seen.append(current)
        current = current.__cause__ or current.__context__


def cert_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure behind ``exc``, if that is what it is (libraries
    wrap it in their own connection errors, so the whole cause/context chain is searched)."""
    for current in chain(exc):
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
    return None
