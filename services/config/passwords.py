"""Password hashing and the lock-out after repeated wrong passwords: pure logic, no store.

Hashes are Argon2id with argon2-cffi's defaults (RFC 9106's low-memory profile: 64 MiB,
3 passes); a check takes about 0.1 s of one core, so callers run :func:`hash_password` and
:func:`verify_password` in a thread.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from shared.errors import ConfigRejected

MIN_LENGTH = 12
"""Shortest password accepted (a console that can change where mail goes deserves more than
the usual 8)."""
MAX_LENGTH = 1024
"""Longest password accepted: hashing an unbounded input would be a way to burn CPU."""

_hasher = PasswordHasher()


def check_strength(password: str) -> None:
    """Refuse a password that is too short, too long, or blank at either end (a pasted
    newline would make a password nobody can type)."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise ConfigRejected(
            f"a password needs {MIN_LENGTH} to {MAX_LENGTH} characters, this one has "
            f"{len(password)}"
        )
    if password != password.strip():
        raise ConfigRejected("a password must not begin or end with white space")


def hash_password(password: str) -> str:
    """The Argon2id hash of ``password`` (salted: two calls give different hashes)."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash`` (False for a damaged hash too)."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):  # a mismatch is a VerificationError
        return False


def rehashed(password_hash: str, password: str) -> str | None:
    """A new hash of the (verified) ``password`` when ``password_hash`` was made with other
    parameters than today's, else None: stored hashes follow a raised cost at each sign-in."""
    return _hasher.hash(password) if _hasher.check_needs_rehash(password_hash) else None


@functools.cache
def dummy_hash() -> str:
    """A hash no password matches, checked for unknown user names so that they take as
    long to refuse as a known name with a wrong password."""
    return _hasher.hash("not a password: no user has it \x00")


@dataclass(frozen=True)
class Lockout:
    """After ``threshold`` wrong passwords in a row a user is locked for ``first``; each
    further wrong password (after the lock ends) doubles it, up to ``longest``. A right
    password starts over. Checks made while locked are refused without looking at the
    password and do not count, so a guesser gains nothing by trying during the lock."""

    threshold: int = 5
    first: timedelta = timedelta(seconds=30)
    longest: timedelta = timedelta(hours=1)

    def delay(self, failures: int) -> timedelta | None:
        """How long to lock after the ``failures``-th wrong password in a row (None: not)."""
        if failures < self.threshold:
            return None
        doublings = min(failures - self.threshold, 32)  # 2**32 times first is past any cap
        delay: timedelta = self.first * (1 << doublings)
        return min(delay, self.longest)

    def locked_until(self, failures: int, now: datetime) -> datetime | None:
        """When a lock that starts ``now`` after ``failures`` wrong passwords ends."""
        delay = self.delay(failures)
        return None if delay is None else now + delay

    @staticmethod
    def is_locked(locked_until: datetime | None, now: datetime) -> bool:
        """Whether a user whose lock ends at ``locked_until`` is locked at ``now``."""
        return locked_until is not None and now < locked_until


LOCKOUT = Lockout()
"""The policy the console and the API use."""
