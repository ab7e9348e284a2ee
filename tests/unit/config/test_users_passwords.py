"""Password hashing, the password rules, the lock-out policy and the role table: pure logic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher

from services.config.passwords import (
    LOCKOUT,
    MAX_LENGTH,
    MIN_LENGTH,
    Lockout,
    check_strength,
    dummy_hash,
    hash_password,
    rehashed,
    verify_password,
)
from shared.errors import ConfigRejected
from shared.models.users import ROLES, allows

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_a_hash_is_argon2id_salted_and_verifies_only_its_password() -> None:
    first, second = hash_password("correct horse battery"), hash_password("correct horse battery")
    assert first.startswith("$argon2id$") and first != second
    assert "correct horse" not in first
    assert verify_password(first, "correct horse battery")
    assert verify_password(second, "correct horse battery")
    assert not verify_password(first, "correct horse battery!")
    assert not verify_password("not a hash", "correct horse battery")
    assert not verify_password(dummy_hash(), "")


@pytest.mark.parametrize(
    "password",
    ["x" * (MIN_LENGTH - 1), "x" * (MAX_LENGTH + 1), " leading-space-pw", "trailing-newline\n"],
)
def test_weak_or_mangled_passwords_are_refused_without_echoing_them(password: str) -> None:
    with pytest.raises(ConfigRejected) as refused:
        check_strength(password)
    assert password.strip() not in str(refused.value)


def test_passwords_of_the_allowed_lengths_pass() -> None:
    check_strength("x" * MIN_LENGTH)
    check_strength("a sentence with spaces inside" + "y" * (MAX_LENGTH - 29))


def test_the_lock_starts_at_the_threshold_and_doubles_up_to_the_cap() -> None:
    policy = Lockout(threshold=5, first=timedelta(seconds=30), longest=timedelta(hours=1))
    assert [policy.delay(n) for n in range(5)] == [None] * 5
    assert [policy.delay(n) for n in range(5, 9)] == [
        timedelta(seconds=s) for s in (30, 60, 120, 240)
    ]
    assert policy.delay(12) == timedelta(hours=1)
    assert policy.delay(10_000) == timedelta(hours=1)


def test_locked_until_and_is_locked() -> None:
    until = LOCKOUT.locked_until(LOCKOUT.threshold, NOW)
    assert until == NOW + LOCKOUT.first
    assert LOCKOUT.locked_until(LOCKOUT.threshold - 1, NOW) is None
    assert Lockout.is_locked(until, NOW)
    assert Lockout.is_locked(until, NOW + LOCKOUT.first - timedelta(microseconds=1))
    assert not Lockout.is_locked(until, NOW + LOCKOUT.first)
    assert not Lockout.is_locked(None, NOW)


def test_the_role_table_is_ordered_viewer_operator_admin() -> None:
    assert ROLES == ("viewer", "operator", "admin")
    table = {(role, needed): allows(role, needed) for role in ROLES for needed in ROLES}
    assert table == {
        ("viewer", "viewer"): True,
        ("viewer", "operator"): False,
        ("viewer", "admin"): False,
        ("operator", "viewer"): True,
        ("operator", "operator"): True,
        ("operator", "admin"): False,
        ("admin", "viewer"): True,
        ("admin", "operator"): True,
        ("admin", "admin"): True,
    }


def test_a_hash_made_with_weaker_parameters_is_renewed_and_todays_is_kept() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("a long password")
    renewed = rehashed(weak, "a long password")
    assert renewed is not None and renewed != weak
    assert verify_password(renewed, "a long password")
    assert rehashed(renewed, "a long password") is None
