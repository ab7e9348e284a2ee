"""The guard that keeps a script able to put mail into cases, and the list diff a write shows."""

from __future__ import annotations

import pytest

from services.config.guards import GuardRefused, check_guards, matches_cases, no_case_matcher
from services.config.list_diff import diff_list, planned_list_changes
from shared.models.config import ProcessorSettings, ScriptSetting, SystemConfig


def _config(*scripts: tuple[str, bool]) -> SystemConfig:
    settings = ProcessorSettings(
        incoming_scripts=tuple(ScriptSetting(name=n, enabled=e) for n, e in scripts)
    )
    return SystemConfig(processor=settings)


DEFAULT = SystemConfig()
ONLY_SIZE = _config(("size_limit", True))
MATCHER_OFF = _config(("size_limit", True), ("case_matcher", False))


def test_case_matcher_declares_that_it_matches_cases_and_the_others_do_not() -> None:
    assert matches_cases("case_matcher")
    assert not any(matches_cases(n) for n in ("size_limit", "auto_reply", "nope"))


def test_a_list_without_an_enabled_case_matching_script_is_refused_with_the_reason() -> None:
    assert no_case_matcher(DEFAULT) is None
    for config in (ONLY_SIZE, MATCHER_OFF, _config()):
        reason = no_case_matcher(config)
        assert reason is not None and "every reply would open a new case" in reason
    assert "enabled: size_limit)" in str(no_case_matcher(MATCHER_OFF))


def test_another_script_may_declare_that_it_matches_cases() -> None:
    assert no_case_matcher(ONLY_SIZE, declares=lambda name: name == "size_limit") is None


def test_the_guard_refuses_unless_forced_and_says_what_force_overrode() -> None:
    with pytest.raises(GuardRefused, match="no enabled script puts mail into cases"):
        check_guards(DEFAULT, ONLY_SIZE, force=False)
    forced = check_guards(DEFAULT, ONLY_SIZE, force=True)
    assert forced is not None and "every reply would open a new case" in forced
    assert check_guards(DEFAULT, DEFAULT, force=True) is None
    assert check_guards(None, DEFAULT, force=False) is None


def test_a_forced_state_blocks_only_changes_to_what_the_guard_watches() -> None:
    other = ONLY_SIZE.model_copy(update={"version": 7})
    assert check_guards(ONLY_SIZE, other, force=False) is None
    with pytest.raises(GuardRefused):
        check_guards(ONLY_SIZE, MATCHER_OFF, force=False)
    with pytest.raises(GuardRefused):
        check_guards(None, ONLY_SIZE, force=False)


def test_the_diff_names_added_removed_changed_and_reordered_items() -> None:
    old = [
        {"name": "a", "enabled": True},
        {"name": "b", "enabled": True},
        {"name": "c", "enabled": False},
    ]
    new = [
        {"name": "c", "enabled": True},
        {"name": "a", "enabled": True},
        {"name": "d", "enabled": False},
    ]
    change = diff_list("processor/incoming_scripts", old, new)
    assert change.added == ["d (disabled)"] and change.removed == ["b"]
    assert change.changed == ["c: enabled false → true"]
    assert (change.order_before, change.order_after) == (["a", "c"], ["c", "a"])
    assert change.lines() == [
        "processor/incoming_scripts:",
        "  + d (disabled)",
        "  - b",
        "  ~ c: enabled false → true",
        "  order: a, c → c, a",
    ]
    same = diff_list("x/y", old, old)
    assert same.empty and same.lines() == ["x/y:", "  (unchanged)"]


def test_plain_and_address_items_are_told_apart_by_value_and_address() -> None:
    assert diff_list("system/f", ["test", "dev"], ["dev"]).removed == ["test"]
    old = [{"name": "Ann", "address": "a@example.org"}]
    new = [{"name": "Ann B", "address": "a@example.org"}]
    assert diff_list("addresses/administrators", old, new).changed == [
        'a@example.org: name "Ann" → "Ann B"'
    ]


def test_a_planned_write_shows_what_one_entry_replaces() -> None:
    changes = planned_list_changes(
        DEFAULT,
        "processor",
        {"incoming_scripts": [{"name": "size_limit"}], "acknowledge_new_cases": False},
    )
    assert len(changes) == 1 and changes[0].setting == "processor/incoming_scripts"
    assert changes[0].added == []
    assert set(changes[0].removed) == {
        s.name + ("" if s.enabled else " (disabled)")
        for s in ProcessorSettings().incoming_scripts
        if s.name != "size_limit"
    }
    assert "case_matcher" in changes[0].removed
    assert (
        planned_list_changes(DEFAULT, "processor", {"incoming_scripts": [{"name": "nope"}]}) == []
    )
    assert planned_list_changes(DEFAULT, "incoming.accounts", {"x": 1}) == []
