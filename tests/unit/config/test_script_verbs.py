"""Script verbs as pure list operations: enable, disable, move, and what ``list`` shows."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.config.scripts import (
    KINDS,
    Installed,
    Placement,
    Slot,
    entries,
    installed_scripts,
    move,
    set_enabled,
)
from shared.errors import ConfigRejected, NotFound
from shared.models.config import ProcessorSettings
from shared.models.outgoing_config import SenderSettings

INCOMING = KINDS["incoming"]
SLOTS = (Slot("size_limit", True), Slot("reject_subject", False), Slot("case_matcher", True))
INSTALLED = {"size_limit", "reject_subject", "case_matcher", "auto_reply"}


def _names(slots: tuple[Slot, ...]) -> list[str]:
    return [s.name for s in slots]


def test_enable_and_disable_change_one_script_in_place() -> None:
    enabled = set_enabled(SLOTS, "reject_subject", enabled=True, kind=INCOMING, installed=INSTALLED)
    assert enabled == (Slot("size_limit", True), Slot("reject_subject", True), SLOTS[2])
    disabled = set_enabled(SLOTS, "size_limit", enabled=False, kind=INCOMING, installed=INSTALLED)
    assert disabled == (Slot("size_limit", False), *SLOTS[1:])


def test_enabling_an_installed_unlisted_script_adds_it_at_the_bottom() -> None:
    added = set_enabled(SLOTS, "auto_reply", enabled=True, kind=INCOMING, installed=INSTALLED)
    assert added == (*SLOTS, Slot("auto_reply", True))
    unchanged = set_enabled(SLOTS, "auto_reply", enabled=False, kind=INCOMING, installed=INSTALLED)
    assert unchanged == SLOTS


def test_an_unknown_name_is_not_found_naming_the_field_and_the_known_ones() -> None:
    with pytest.raises(NotFound, match=r"^name: no incoming-mail script 'nope'; known: auto_reply"):
        set_enabled(SLOTS, "nope", enabled=True, kind=INCOMING, installed=INSTALLED)
    with pytest.raises(NotFound, match=r"^name: no incoming-mail script 'nope'"):
        move(SLOTS, "nope", Placement(to="top"), kind=INCOMING, installed=INSTALLED)


@pytest.mark.parametrize(
    ("place", "order"),
    [
        (Placement(before="size_limit"), ["case_matcher", "size_limit", "reject_subject"]),
        (Placement(after="size_limit"), ["size_limit", "case_matcher", "reject_subject"]),
        (Placement(to="top"), ["case_matcher", "size_limit", "reject_subject"]),
        (Placement(to="bottom"), ["size_limit", "reject_subject", "case_matcher"]),
        (Placement(after="reject_subject"), ["size_limit", "reject_subject", "case_matcher"]),
    ],
)
def test_move_places_a_script_and_keeps_its_enablement(place: Placement, order: list[str]) -> None:
    moved = move(SLOTS, "case_matcher", place, kind=INCOMING, installed=INSTALLED)
    assert _names(moved) == order
    assert dict((s.name, s.enabled) for s in moved) == dict((s.name, s.enabled) for s in SLOTS)


def test_moving_an_unlisted_script_puts_it_in_disabled() -> None:
    moved = move(
        SLOTS, "auto_reply", Placement(before="case_matcher"), kind=INCOMING, installed=INSTALLED
    )
    assert moved == (*SLOTS[:2], Slot("auto_reply", False), SLOTS[2])


def test_bad_targets_are_refused_naming_the_field() -> None:
    with pytest.raises(ConfigRejected, match=r"^before: no incoming-mail script 'nope'"):
        move(SLOTS, "case_matcher", Placement(before="nope"), kind=INCOMING, installed=INSTALLED)
    with pytest.raises(ConfigRejected, match=r"^after: a script cannot move after itself"):
        move(
            SLOTS,
            "case_matcher",
            Placement(after="case_matcher"),
            kind=INCOMING,
            installed=INSTALLED,
        )
    with pytest.raises(ConfigRejected, match=r"^after: .*'auto_reply' is not in the list"):
        move(
            SLOTS, "case_matcher", Placement(after="auto_reply"), kind=INCOMING, installed=INSTALLED
        )


@pytest.mark.parametrize(
    "given", [{}, {"before": "a", "after": "b"}, {"before": "a", "to": "top"}, {"to": "middle"}]
)
def test_a_placement_needs_exactly_one_target(given: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        Placement.model_validate(given)


def test_installed_scripts_name_the_package_that_registered_them() -> None:
    for kind, defaults in (
        (KINDS["incoming"], ProcessorSettings().incoming_scripts),
        (KINDS["outgoing"], SenderSettings().outgoing_scripts),
    ):
        found = installed_scripts(kind)
        assert {s.name for s in defaults} <= set(found)
        assert {found[s.name].package for s in defaults} == {"mailroom"}


def test_entries_list_the_order_then_installed_unlisted_scripts() -> None:
    installed = {n: Installed(package="mailroom", package_version="1") for n in INSTALLED}
    shown = entries(SLOTS[:2], INCOMING, installed)
    assert [(e.name, e.position, e.enabled) for e in shown] == [
        ("size_limit", 1, True),
        ("reject_subject", 2, False),
        ("auto_reply", None, False),
        ("case_matcher", None, False),
    ]
    assert [e.matches_cases for e in shown] == [False, False, False, True]
    gone = entries((Slot("removed_one", True),), INCOMING, {})
    assert gone[0].installed is False and gone[0].package is None
    outgoing = entries((Slot("signature", True),), KINDS["outgoing"], {})
    assert outgoing[0].matches_cases is None
