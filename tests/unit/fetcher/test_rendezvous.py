"""Rendezvous hashing: one owner per account, even shares, and only the necessary moves."""

from __future__ import annotations

from collections import Counter

from services.fetcher.rendezvous import assign, owner_of, weight

ACCOUNTS = [f"account-{n}" for n in range(3000)]
INSTANCES = ["fetcher-a", "fetcher-b", "fetcher-c"]


def test_every_account_has_exactly_one_owner_and_the_same_one_for_every_caller() -> None:
    first = assign(ACCOUNTS, INSTANCES)
    again = assign(reversed(ACCOUNTS), list(reversed(INSTANCES)))
    assert first == again
    assert set(first) == set(ACCOUNTS)
    assert set(first.values()) == set(INSTANCES)


def test_shares_are_about_even() -> None:
    shares = Counter(assign(ACCOUNTS, INSTANCES).values())
    for instance in INSTANCES:
        assert 900 <= shares[instance] <= 1100, shares


def test_a_new_instance_takes_about_its_share_and_nothing_else_moves() -> None:
    before = assign(ACCOUNTS, INSTANCES)
    after = assign(ACCOUNTS, [*INSTANCES, "fetcher-d"])
    moved = {a for a in ACCOUNTS if before[a] != after[a]}
    assert all(after[a] == "fetcher-d" for a in moved)
    assert 650 <= len(moved) <= 850, len(moved)  # about 1/4 of 3000


def test_a_removed_instance_moves_only_its_own_accounts_spread_over_the_rest() -> None:
    before = assign(ACCOUNTS, INSTANCES)
    after = assign(ACCOUNTS, ["fetcher-a", "fetcher-c"])
    moved = {a for a in ACCOUNTS if before[a] != after[a]}
    assert moved == {a for a in ACCOUNTS if before[a] == "fetcher-b"}
    shares = Counter(after[a] for a in moved)
    assert min(shares.values()) > 0.4 * len(moved), shares


def test_no_instance_means_no_owner() -> None:
    assert owner_of("support", []) is None
    assert assign(["support"], []) == {}


def test_the_weight_is_stable_across_processes() -> None:
    # A fixed value: every instance, whatever its Python version or hash seed, must agree.
    assert weight("support", "fetcher-a") == 7_486_330_367_369_947_770
    assert weight("support", "fetcher-a") != weight("fetcher-a", "support")
