"""The JMAP adapter's pure decisions: cursor, folder lookup, which changed emails are new,
session parsing, error mapping, and the submission's outcome; the config's JMAP URL rules."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.sender.transports.jmap import choose_identity, reply_of, sent_mailbox, set_error
from shared.errors import Permanent, Transient
from shared.mailbox.jmap.client import CannotCalculateChanges, Session, method_error
from shared.mailbox.jmap.cursor import (
    Cursor,
    after_second,
    find_mailbox,
    is_candidate,
    oldest_first,
)
from shared.models.config import IncomingAccount, OutgoingConnection

MAILBOXES: list[dict[str, Any]] = [
    {"id": "i", "name": "Inbox", "role": "inbox", "parentId": None},
    {"id": "a", "name": "Archive", "role": "archive", "parentId": None},
    {"id": "s", "name": "Support", "role": None, "parentId": "i"},
    {"id": "t", "name": "Tickets", "role": None, "parentId": "s"},
]


def test_cursor_round_trips_and_refuses_foreign_text() -> None:
    assert Cursor.load(Cursor("42").dump()) == Cursor("42")
    floored = Cursor("42", "2026-11-01T00:00:00Z")
    assert Cursor.load(floored.dump()) == floored
    for text in (
        "",
        "17:4",
        "[1]",
        '{"uidvalidity": 3}',
        '{"v": 2, "email_state": "1"}',
        '{"v": 1, "email_state": "1", "floor": 5}',
    ):
        with pytest.raises(Permanent, match="not a JMAP cursor"):
            Cursor.load(text)


@pytest.mark.parametrize(
    ("folder", "found"),
    [
        ("INBOX", "i"),
        ("inbox", "i"),
        ("Archive", "a"),
        ("archive", "a"),
        ("Inbox/Support/Tickets", "t"),
        ("Support", "s"),
        ("Nope", None),
    ],
)
def test_folder_by_role_name_or_path(folder: str, found: str | None) -> None:
    mailbox = find_mailbox(MAILBOXES, folder)
    assert (mailbox["id"] if mailbox else None) == found


def test_new_mail_is_created_in_the_folder_or_moved_in_unseen() -> None:
    inside = {"mailboxIds": {"i": True}, "keywords": {}}
    seen_inside = {"mailboxIds": {"i": True}, "keywords": {"$seen": True}}
    outside = {"mailboxIds": {"a": True}, "keywords": {}}
    assert is_candidate(inside, "i", created=True)
    assert is_candidate(seen_inside, "i", created=True)
    assert is_candidate(inside, "i", created=False)
    # Our own $seen flag or a move out of the folder is an update, not new mail.
    assert not is_candidate(seen_inside, "i", created=False)
    assert not is_candidate(outside, "i", created=True)


def test_after_second() -> None:
    assert after_second("2026-12-31T23:59:59Z") == "2027-01-01T00:00:00Z"
    assert after_second("2026-11-01T10:00:00.250+01:00") == "2026-11-01T09:00:01Z"


def test_oldest_first_by_received_then_id() -> None:
    emails = [
        {"id": "b", "receivedAt": "2026-11-02T00:00:00Z"},
        {"id": "c", "receivedAt": "2026-11-01T00:00:00Z"},
        {"id": "a", "receivedAt": "2026-11-02T00:00:00Z"},
    ]
    assert [e["id"] for e in oldest_first(emails)] == ["c", "a", "b"]


def test_session_urls_are_made_absolute_and_templates_filled() -> None:
    session = Session.parse(
        {
            "apiUrl": "/jmap/",
            "downloadUrl": "/jmap/download/{accountId}/{blobId}/{name}?accept={type}",
            "uploadUrl": "/jmap/upload/{accountId}/",
            "eventSourceUrl": (
                "/jmap/eventsource/?types={types}&closeafter={closeafter}&ping={ping}"
            ),
            "capabilities": {"urn:ietf:params:jmap:core": {}, "urn:ietf:params:jmap:mail": {}},
            "primaryAccounts": {"urn:ietf:params:jmap:mail": "u 1"},
        },
        "https://mail.example.org/.well-known/jmap",
    )
    assert session.api_url == "https://mail.example.org/jmap/"
    assert session.download("G1") == (
        "https://mail.example.org/jmap/download/u%201/G1/message.eml"
        "?accept=application%2Foctet-stream"
    )
    assert session.upload() == "https://mail.example.org/jmap/upload/u%201/"
    assert session.events() == (
        "https://mail.example.org/jmap/eventsource/?types=Email&closeafter=no&ping=0"
    )
    assert session.submission_account_id is None


def test_a_session_without_mail_is_permanent() -> None:
    with pytest.raises(Permanent, match="no JMAP Mail"):
        Session.parse({"capabilities": {}, "primaryAccounts": {}}, "https://x/")


def test_method_errors_map_to_transient_permanent_or_resync() -> None:
    where = "alice at host"
    assert isinstance(
        method_error({"type": "cannotCalculateChanges"}, "c", where), CannotCalculateChanges
    )
    assert type(method_error({"type": "serverUnavailable"}, "c", where)) is Transient
    refused = method_error({"type": "accountNotFound"}, "c", where)
    assert isinstance(refused, Permanent) and "alice at host" in str(refused)


def test_identity_for_the_from_address() -> None:
    identities = [
        {"id": "1", "email": "help@example.org"},
        {"id": "2", "email": "*@example.net"},
    ]
    assert choose_identity(identities, "Help@Example.org") == "1"
    assert choose_identity(identities, "any@example.net") == "2"
    assert choose_identity(identities, "x@elsewhere.org") is None
    # Cyrus without domains: one identity with no address.
    assert choose_identity([{"id": "alice", "email": ""}], "x@elsewhere.org") == "alice"


def test_sent_mailbox_then_drafts() -> None:
    assert sent_mailbox([{"id": "d", "role": "drafts"}, {"id": "s", "role": "sent"}]) == "s"
    assert sent_mailbox([{"id": "d", "role": "drafts"}]) == "d"
    assert sent_mailbox([{"id": "i", "role": "inbox"}]) is None


def test_submission_errors() -> None:
    assert type(set_error({"type": "serverFail"}, "x")) is Transient
    assert (
        type(set_error({"type": "smtpProtocolError", "description": "451 try later"}, "x"))
        is Transient
    )
    assert type(set_error({"type": "smtpProtocolError", "description": "554 no"}, "x")) is Permanent
    assert type(set_error({"type": "forbiddenFrom"}, "x")) is Permanent


def test_delivery_status_becomes_per_recipient_refusals() -> None:
    status = {
        "ok@example.net": {"smtpReply": "250 2.1.5 OK", "delivered": "queued"},
        "gone@example.net": {"smtpReply": "550 5.1.1 no such user", "delivered": "no"},
        "later@example.net": {"smtpReply": "451 4.3.0 try later", "delivered": "unknown"},
    }
    rcpts = list(status)
    reply = reply_of("S1", status, rcpts)
    assert reply.reply is not None and "S1" in reply.reply
    assert set(reply.refused) == {"gone@example.net", "later@example.net"}
    assert reply.refused["gone@example.net"].permanent
    assert not reply.refused["later@example.net"].permanent
    assert reply_of("S2", {}, rcpts).refused == {}
    everyone = reply_of(
        "S3", {"gone@example.net": status["gone@example.net"]}, ["gone@example.net"]
    )
    assert everyone.reply is None


def _account(**fields: object) -> IncomingAccount:
    base = {
        "name": "j",
        "protocol": "JMAP",
        "host": "mail.example.org",
        "username": "u",
        "password": "p",
    }
    return IncomingAccount.model_validate({**base, **fields})


def test_session_url_from_host_base_url_or_as_given() -> None:
    assert _account().jmap_session_url == "https://mail.example.org/.well-known/jmap"
    assert _account(port=8443).jmap_session_url == "https://mail.example.org:8443/.well-known/jmap"
    assert _account(jmap_url="https://api.fastmail.com/").jmap_session_url == (
        "https://api.fastmail.com/.well-known/jmap"
    )
    given = "https://api.fastmail.com/jmap/session"
    assert _account(jmap_url=given).jmap_session_url == given
    assert _account(jmap_url="http://127.0.0.1:8080").jmap_session_url == (
        "http://127.0.0.1:8080/.well-known/jmap"
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"jmap_url": "http://mail.example.org/"}, "http:// is accepted for 127.0.0.1"),
        ({"jmap_url": "ftp://mail.example.org/"}, "must be an https:// URL"),
        ({"jmap_url": "https://u:p@mail.example.org/"}, "must not carry credentials"),
        ({"security": "STARTTLS"}, "security does not apply to JMAP"),
        ({"protocol": "IMAPS", "jmap_url": "https://x.org/"}, "applies to protocol JMAP only"),
    ],
)
def test_jmap_url_rules(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _account(**fields)


def test_outgoing_jmap_connection() -> None:
    conn = OutgoingConnection.model_validate(
        {"protocol": "jmap", "host": "api.fastmail.com", "username": "u", "password": "p"}
    )
    assert conn.jmap_session_url == "https://api.fastmail.com/.well-known/jmap"
    with pytest.raises(ValidationError, match="protocol jmap only"):
        OutgoingConnection.model_validate({"host": "smtp.x.org", "jmap_url": "https://x.org/"})
