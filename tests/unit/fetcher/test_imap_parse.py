"""The IMAP adapter's pure parts: aioimaplib's response shapes and Dovecot's quirks."""

from __future__ import annotations

import pytest

from shared.mailbox._imap_parse import (
    ImapProtocolError,
    announces_new_mail,
    decode_folder,
    encode_folder,
    parse_bodies,
    parse_list,
    parse_search,
    parse_select,
    parse_sizes,
    response_code,
    size_groups,
    status_text,
    uid_set,
)

DONE = b"Fetch completed (0.001 + 0.000 secs)."


def test_search_drops_the_last_message_that_n_star_always_matches() -> None:
    # UID SEARCH UID 9:* on a folder whose highest UID is 2 answers "2".
    assert parse_search([b"2", b"Search completed."], after_uid=8) == []


def test_search_keeps_uids_above_the_mark_sorted_and_unique() -> None:
    lines = [b"7 5 6", b"6 8", b"Search completed (0.001 + 0.000 secs)."]
    assert parse_search(lines, after_uid=5) == [6, 7, 8]


def test_search_ignores_an_empty_answer_and_non_uid_lines() -> None:
    assert parse_search([b"", b"Search completed."], after_uid=0) == []
    assert parse_search([b"(MODSEQ 12)", b"3", b"ok 4 done"], after_uid=0) == [3]


def test_fetch_bodies_keep_bytes_exact_even_with_imap_syntax_inside() -> None:
    first = b"Subject: {5}\r\n\r\nbody ) ( {3}\r\n)\r\n\xff\xfe\r\n"
    second = b"Subject: two\r\n\r\n" + bytes(range(256))
    lines: list[bytes | bytearray] = [
        b"1 FETCH (UID 5 BODY[] {%d}" % len(first),
        bytearray(first),
        b")",
        b"2 FETCH (UID 9 BODY[] {%d}" % len(second),
        bytearray(second),
        b")",
        DONE,
    ]
    bodies = parse_bodies(lines)
    assert bodies == {5: first, 9: second}
    assert all(type(body) is bytes for body in bodies.values())


def test_fetch_uid_after_the_literal_and_unsolicited_flag_updates() -> None:
    lines: list[bytes | bytearray] = [
        b"3 FETCH (FLAGS (\\Seen))",  # another client flagged message 3 meanwhile
        b"1 FETCH (BODY[] {3}",
        bytearray(b"abc"),
        b" UID 12)",
        b"2 FETCH (FLAGS (\\Seen) UID 13 BODY[] {0}",
        bytearray(b""),
        b")",
        DONE,
    ]
    assert parse_bodies(lines) == {12: b"abc", 13: b""}


def test_fetch_with_a_truncated_literal_or_without_uid_is_a_protocol_error() -> None:
    with pytest.raises(ImapProtocolError, match="announced as 5"):
        parse_bodies([b"1 FETCH (UID 1 BODY[] {5}", bytearray(b"abc"), b")", DONE])
    with pytest.raises(ImapProtocolError, match="without its UID"):
        parse_bodies([b"1 FETCH (BODY[] {3}", bytearray(b"abc"), b")", DONE])
    with pytest.raises(ImapProtocolError, match="sent none"):
        parse_bodies([b"1 FETCH (UID 1 BODY[] {3}", b")", DONE])


def test_sizes() -> None:
    lines = [b"1 FETCH (UID 1 RFC822.SIZE 66)", b"2 FETCH (RFC822.SIZE 67 UID 4)", DONE]
    assert parse_sizes(lines) == {1: 66, 4: 67}


def test_select_status() -> None:
    lines = [
        b"FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
        b"OK [PERMANENTFLAGS (\\Answered \\Seen \\*)] Flags permitted.",
        b"2 EXISTS",
        b"0 RECENT",
        b"OK [UIDVALIDITY 1795464600] UIDs valid",
        b"OK [UIDNEXT 3] Predicted next UID",
        b"[READ-WRITE] Select completed (0.001 + 0.000 secs).",
    ]
    assert parse_select(lines) == (1795464600, 2)
    assert parse_select([b"Select completed."]) == (None, 0)


def test_uid_sets_merge_only_consecutive_uids() -> None:
    assert uid_set([1]) == "1"
    assert uid_set([3, 1, 2, 7, 9, 10, 10]) == "1:3,7,9:10"
    with pytest.raises(ValueError):
        uid_set([])


def test_size_groups_bound_count_and_bytes() -> None:
    pairs = [(1, 10), (2, 10), (3, 10), (4, 100), (5, 1)]
    assert size_groups(pairs, max_bytes=25, max_count=10) == [[1, 2], [3], [4], [5]]
    assert size_groups(pairs, max_bytes=1000, max_count=2) == [[1, 2], [3, 4], [5]]
    assert size_groups([], max_bytes=1, max_count=1) == []


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        ("INBOX", '"INBOX"'),
        ("Sent Items", '"Sent Items"'),
        ('a"b\\c', '"a\\"b\\\\c"'),
        ("R&D", '"R&-D"'),
        ("Entwürfe", '"Entw&APw-rfe"'),
        ("台北", '"&U,BTFw-"'),  # RFC 3501's own example
    ],
)
def test_folder_names_are_quoted_in_modified_utf7(name: str, wire: str) -> None:
    assert encode_folder(name) == wire


def test_status_text_and_response_codes() -> None:
    assert status_text([b"x", b"[AUTHENTICATIONFAILED] Authentication failed."]) == (
        "[AUTHENTICATIONFAILED] Authentication failed."
    )
    assert response_code("[UNAVAILABLE] Temporary authentication failure") == "UNAVAILABLE"
    assert response_code("[READ-WRITE] Select completed") == "READ-WRITE"
    assert response_code("Mailbox doesn't exist: Nope") is None


def test_only_exists_counts_as_news_during_idle() -> None:
    assert announces_new_mail([b"4 EXISTS", b"1 RECENT"])
    assert not announces_new_mail([b"3 FETCH (FLAGS (\\Seen))"])
    assert not announces_new_mail([b"2 EXPUNGE"])


def test_list_gives_the_selectable_folders_decoded() -> None:
    lines = [
        b'(\\HasNoChildren) "." INBOX',
        b'(\\HasNoChildren \\Sent) "." "Sent Items"',
        b'(\\Noselect \\HasChildren) "/" Archive',
        b'(\\HasNoChildren) "/" "Caf&AOk- \\"Bar\\""',
        b"() NIL {5}",
        b"Inbox",
        b"LIST completed (0.001 + 0.000 secs).",
    ]
    assert parse_list(lines) == ["INBOX", "Sent Items", 'Café "Bar"', "Inbox"]


def test_folder_names_survive_modified_utf7() -> None:
    for name in ("Entwürfe & Co", "日本語", "&", "plain"):
        assert decode_folder(encode_folder(name).strip('"')) == name
