"""Which live fetcher instance owns which account: rendezvous (highest-random-weight) hashing.

Every instance computes the same answer from the same inputs, with no coordination: each
(account, instance) pair gets a pseudo-random weight and the account goes to the instance
with the highest. A new instance wins about 1/N of the accounts, and only those move; an
instance that leaves moves only the accounts it had, spread evenly over the rest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def weight(account: str, instance: str) -> int:
    """The pair's weight: 64 bits of BLAKE2b, stable across processes and Python versions."""
    digest = hashlib.blake2b(account.encode() + b"\x00" + instance.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner_of(account: str, instances: Iterable[str]) -> str | None:
    """The instance that owns ``account`` among ``instances``; None when there is none."""
    return max(instances, key=lambda instance: (weight(account, instance), instance), default=None)


def assign(accounts: Iterable[str], instances: Iterable[str]) -> dict[str, str]:
    """Account → owning instance for every account (empty when there is no instance)."""
    members = sorted(set(instances))
    if not members:
        return {}
    return {account: str(owner_of(account, members)) for account in accounts}
