"""GRAPH accounts and graph outgoing connections: the server follows from the Graph URL, the
sign-in must be OAuth 2.0, and the Graph fields apply to Graph only."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.models.config import GRAPH_SCOPE, IncomingAccount, OutgoingConnection

CLIENT = {
    "auth": "oauth2",
    "client_id": "app",
    "client_secret": "s3cret-value",
    "authority": "https://login.microsoftonline.com/contoso",
}


def test_a_graph_account_needs_no_host_and_gets_graphs_scope() -> None:
    account = IncomingAccount.model_validate(
        {"name": "m365", "protocol": "GRAPH", "username": "a@contoso.com", **CLIENT}
    )
    assert account.host == "graph.microsoft.com"
    assert account.effective_port == 443
    assert account.scope == GRAPH_SCOPE
    assert account.graph_mailbox is None


def test_a_graph_account_signs_in_with_oauth2_only() -> None:
    with pytest.raises(ValidationError, match=r"OAuth 2\.0 only"):
        IncomingAccount.model_validate(
            {"name": "m", "protocol": "GRAPH", "username": "a@contoso.com", "password": "pw"}
        )


def test_graph_fields_apply_to_graph_only() -> None:
    with pytest.raises(ValidationError, match="GRAPH only"):
        IncomingAccount.model_validate(
            {"name": "m", "host": "h", "username": "u", "password": "p", "graph_mailbox": "x"}
        )


def test_a_graph_connection_sends_with_oauth2() -> None:
    conn = OutgoingConnection.model_validate(
        {"protocol": "graph", "username": "helpdesk@contoso.com", **CLIENT}
    )
    assert conn.host == "graph.microsoft.com"
    assert conn.scope == GRAPH_SCOPE
    with pytest.raises(ValidationError, match=r"OAuth 2\.0 only"):
        OutgoingConnection.model_validate({"protocol": "graph", "username": "u", "password": "p"})


def test_a_jmap_account_or_connection_with_a_url_needs_no_host() -> None:
    url = "https://jmap.example.org/.well-known/jmap"
    basic = {"username": "u", "password": "pw", "jmap_url": url}
    account = IncomingAccount.model_validate({"name": "j", "protocol": "JMAP", **basic})
    assert account.host == "jmap.example.org" and account.jmap_session_url == url
    conn = OutgoingConnection.model_validate({"protocol": "jmap", **basic})
    assert conn.host == "jmap.example.org"


@pytest.mark.parametrize("protocol", ["IMAPS", "POP3", "JMAP"])
def test_every_other_account_still_needs_its_host(protocol: str) -> None:
    with pytest.raises(ValidationError, match="host: give the server's host name"):
        IncomingAccount.model_validate(
            {"name": "x", "protocol": protocol, "username": "u", "password": "pw"}
        )
    with pytest.raises(ValidationError, match="host: give the server's host name"):
        OutgoingConnection.model_validate({"username": "u", "password": "pw"})
