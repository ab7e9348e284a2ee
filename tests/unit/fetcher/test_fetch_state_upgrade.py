"""A fetch position written before the mailbox seam becomes the adapter's cursor with the same
meaning: an upgraded Mailroom re-fetches nothing and skips nothing."""

from __future__ import annotations

import json

from shared.models.cursors import ImapCursor
from shared.models.records import FetchState


def test_an_imap_position_becomes_the_imap_cursor() -> None:
    stored = {"account": "a", "folder": "INBOX", "uidvalidity": 7, "last_uid": 42}
    cursor = ImapCursor.parse(FetchState.model_validate(stored).cursor)
    assert cursor == ImapCursor(uidvalidity=7, mark=42, renumbered=False)


def test_a_renumbered_imap_position_keeps_looking_for_twins() -> None:
    stored = {"account": "a", "folder": "INBOX", "uidvalidity": 8, "last_uid": 0,
              "renumbered": True, "uidls": []}  # fmt: skip
    cursor = ImapCursor.parse(FetchState.model_validate(stored).cursor)
    assert cursor == ImapCursor(uidvalidity=8, mark=0, renumbered=True)


def test_pop3_uidls_left_on_the_server_become_the_taken_set() -> None:
    stored = {"account": "p", "folder": "INBOX", "uidvalidity": None, "last_uid": 0,
              "uidls": ["b-2", "a-1"]}  # fmt: skip
    state = FetchState.model_validate(stored)
    assert state.cursor is not None and json.loads(state.cursor) == {"taken": ["a-1", "b-2"]}


def test_a_position_never_written_or_already_converted_is_left_alone() -> None:
    assert FetchState.model_validate({"account": "a", "folder": "INBOX"}).cursor is None
    empty_pop3 = {"account": "p", "folder": "INBOX", "last_uid": 0, "uidls": []}
    assert FetchState.model_validate(empty_pop3).cursor is None
    new = {"account": "a", "folder": "INBOX", "cursor": "x", "uidvalidity": 1, "last_uid": 9}
    assert FetchState.model_validate(new).cursor == "x"
