"""The connection tests of a JMAP account and a jmap outgoing connection against the local
Cyrus, both without a host (the server is the jmap_url): the incoming test opens the session,
finds the folder and lists the mailboxes (checking move_to_folder); the outgoing test checks
the session's submission capability and Identity/get, and sends the test mail through
EmailSubmission when asked. Failures carry the server's words, never the password."""

from __future__ import annotations

import pytest

from deploy.local.cyrus import Cyrus
from services.sender.probe import TEST_SUBJECT, probe
from shared.mailbox.probe import check_connection, list_folders
from shared.models.config import OutgoingConnection, SystemConfig
from tests.integration.jmap.helpers import fresh_user, jmap_account
from tests.integration.jmap.relay import Relay

pytestmark = pytest.mark.integration


async def test_the_account_test_lists_the_mailboxes_and_checks_move_to_folder(
    cyrus: Cyrus,
) -> None:
    user, password = fresh_user(cyrus)
    account = jmap_account(cyrus, user, password, host="")
    assert account.host == "127.0.0.1"  # from jmap_url

    report = await check_connection(account, timeout=10)
    assert report.ok, report.error
    assert report.server == account.jmap_session_url and report.message_count == 0

    folders = await list_folders(account, timeout=10)
    assert folders.error is None and folders.folders is not None
    assert folders.folders[0] == "INBOX" and "Archive" in folders.folders

    moving = account.model_copy(update={"after_fetch": "move", "move_to_folder": "Archive"})
    assert (await check_connection(moving, timeout=10)).ok
    missing = account.model_copy(update={"after_fetch": "move", "move_to_folder": "Nope"})
    report = await check_connection(missing, timeout=10)
    assert not report.ok and report.error is not None
    assert "move_to_folder 'Nope' does not exist" in report.error and "Archive" in report.error


async def test_the_account_test_shows_a_refused_sign_in_without_the_password(
    cyrus: Cyrus,
) -> None:
    user, _ = fresh_user(cyrus)
    account = jmap_account(cyrus, user, "wrong-password-xyz", host="")
    report = await check_connection(account, timeout=10)
    assert not report.ok and report.error is not None and "refused the sign-in" in report.error
    assert "wrong-password-xyz" not in report.model_dump_json()
    folders = await list_folders(account, timeout=10)
    assert folders.error is not None and "wrong-password-xyz" not in folders.error


def connection(cyrus: Cyrus, user: str, password: str) -> OutgoingConnection:
    return OutgoingConnection.model_validate(
        {"protocol": "jmap", "jmap_url": cyrus.base_url, "username": user, "password": password}
    )


async def test_the_outgoing_test_checks_identities_and_sends_by_submission(
    cyrus: Cyrus, relay: Relay
) -> None:
    user, password = fresh_user(cyrus)
    conn = connection(cyrus, user, password)
    checked = await probe(conn, SystemConfig())
    assert checked.ok, checked.error
    assert checked.server == conn.jmap_session_url and checked.security == "http"
    assert any(step.startswith("Identity/get") for step in checked.steps)

    sent = await probe(conn, SystemConfig(), send_to="tester@example.net")
    assert sent.ok, sent.error
    assert sent.test_mail is not None and sent.test_mail.startswith("sent to tester@example.net")
    got = [m for m in relay.mails if m.rcpt_tos == ["tester@example.net"]]
    assert got and TEST_SUBJECT.encode() in got[-1].data

    wrong = await probe(connection(cyrus, user, "wrong-password-xyz"), SystemConfig())
    assert not wrong.ok and wrong.error and "wrong-password-xyz" not in wrong.error
