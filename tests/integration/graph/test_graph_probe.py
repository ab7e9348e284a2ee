"""The connection tests of a GRAPH account and a graph outgoing connection against the local
Graph stand-in: the incoming test signs in, reads the folder list (the request that proves
the app may read the mailbox) and checks move_to_folder; the outgoing test obtains the token
and, asked to, sends the test mail through sendMail. Failures carry Graph's words, never a
secret."""

from __future__ import annotations

import pytest

from deploy.local.graph_standin import GraphStandin
from services.sender.probe import TEST_SUBJECT, probe
from shared.mailbox.probe import check_connection, list_folders
from shared.models.config import OutgoingConnection, SystemConfig
from tests.integration.graph.contract_server import APP_SECRET, GraphContractServer
from tests.integration.graph.test_graph_send import connection

pytestmark = pytest.mark.integration


async def test_the_account_test_lists_the_folders_and_checks_move_to_folder(
    graph_server: GraphContractServer, graph_standin: GraphStandin
) -> None:
    cases = graph_standin.add_folder(graph_server.upn, "Cases")
    graph_standin.add_folder(graph_server.upn, "Done", parent=cases)
    account = graph_server.account()

    report = await check_connection(account, timeout=10)
    assert report.ok, report.error
    assert report.server == graph_standin.url and report.protocol == "GRAPH"

    folders = await list_folders(account, timeout=10)
    assert folders.error is None and folders.folders is not None
    assert folders.folders[0] == "Inbox" and {"Cases", "Cases/Done"} <= set(folders.folders)

    moving = account.model_copy(update={"after_fetch": "move", "move_to_folder": "cases/done"})
    assert (await check_connection(moving, timeout=10)).ok  # Graph ignores case
    missing = account.model_copy(update={"after_fetch": "move", "move_to_folder": "Nope"})
    report = await check_connection(missing, timeout=10)
    assert not report.ok and report.error is not None
    assert "move_to_folder 'Nope' does not exist" in report.error and "Cases/Done" in report.error


async def test_the_account_test_shows_graphs_refusal_and_no_secret(
    graph_server: GraphContractServer, graph_standin: GraphStandin
) -> None:
    # A mailbox the app's application access policy does not cover: the inbox is addressed
    # by its well-known name, so only the folder list finds out.
    other = f"other-{graph_server.upn}"
    graph_standin.add_mailbox(other)
    refused = await check_connection(graph_server.account(username=other), timeout=10)
    assert not refused.ok and refused.error is not None and "403" in refused.error
    assert other in refused.error

    wrong = await check_connection(graph_server.account(client_secret="not-the-secret"), timeout=10)
    assert not wrong.ok and wrong.error
    for report in (refused, wrong):
        text = report.model_dump_json()
        assert APP_SECRET not in text and "not-the-secret" not in text


async def test_the_outgoing_test_signs_in_and_sends_through_sendmail(
    graph_server: GraphContractServer, graph_standin: GraphStandin
) -> None:
    conn = connection(graph_server)
    checked = await probe(conn, SystemConfig())
    assert checked.ok, checked.error
    assert checked.server == graph_standin.url and checked.security == "https"
    assert any("token" in step for step in checked.steps)
    assert graph_standin.sent(graph_server.upn) == []  # the test alone sends nothing

    customer = f"customer-{graph_server.upn.split('@')[0]}@example.org"
    graph_standin.add_mailbox(customer)
    sent = await probe(conn, SystemConfig(), send_to=customer)
    assert sent.ok, sent.error
    assert sent.test_mail is not None and sent.test_mail.startswith(f"sent to {customer}: 202")
    [raw] = graph_standin.sent(graph_server.upn)
    assert TEST_SUBJECT.encode() in raw


async def test_the_outgoing_test_reports_a_refused_sign_in_without_the_secret(
    graph_server: GraphContractServer,
) -> None:
    conn: OutgoingConnection = connection(graph_server, client_secret="not-the-secret")
    report = await probe(conn, SystemConfig())
    assert not report.ok and report.error
    assert "not-the-secret" not in report.error and APP_SECRET not in report.error
