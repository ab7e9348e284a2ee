"""The stand-in's own answers follow Graph's documented shapes: delta pages and links,
updated and removed items, the error body, and no answer without a valid token."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpx
import pytest

from deploy.local.graph_standin import GraphStandin
from deploy.local.oauth_issuer import OAuthIssuer
from tests.integration.graph.contract_server import APP_SECRET, GraphContractServer

pytestmark = pytest.mark.integration


@pytest.fixture
def http(graph_server: GraphContractServer, oauth_issuer: OAuthIssuer) -> Iterator[httpx.Client]:
    """A client with a token of the test app."""
    form = {
        "grant_type": "client_credentials",
        "client_id": graph_server.client_id,
        "client_secret": APP_SECRET,
    }
    status, body = oauth_issuer.issue(form, "")
    assert status == 200
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    with httpx.Client(
        verify=ssl.create_default_context(cafile=graph_server.standin.ca_file), headers=headers
    ) as client:
        yield client


def mail(n: int) -> bytes:
    return b"Message-ID: <s-%d@example.org>\r\nSubject: s\r\n\r\nbody\r\n" % n


def test_delta_pages_then_reports_updated_and_removed_items(
    graph_server: GraphContractServer, graph_standin: GraphStandin, http: httpx.Client
) -> None:
    upn = graph_server.upn
    first, second = (graph_standin.deliver(upn, mail(n)) for n in (1, 2))
    url = f"{graph_standin.url}/users/{upn}/mailFolders/inbox/messages/delta"
    page = http.get(
        url, params={"$select": "isRead"}, headers={"Prefer": "odata.maxpagesize=1"}
    ).json()
    assert [i["id"] for i in page["value"]] == [first]
    assert set(page["value"][0]) >= {"id", "isRead"} and "receivedDateTime" not in page["value"][0]
    page = http.get(page["@odata.nextLink"]).json()
    assert [i["id"] for i in page["value"]] == [second]
    delta = page["@odata.deltaLink"]
    assert "$deltatoken=" in delta
    assert (
        http.patch(
            f"{graph_standin.url}/users/{upn}/messages/{first}", json={"isRead": True}
        ).status_code
        == 200
    )
    assert http.delete(f"{graph_standin.url}/users/{upn}/messages/{second}").status_code == 204
    changes = http.get(delta).json()["value"]
    assert {"id": first, "isRead": True}.items() <= changes[0].items()
    assert changes[1] == {
        "@odata.type": "#microsoft.graph.message",
        "id": second,
        "@removed": {"reason": "deleted"},
    }


def test_no_valid_token_no_answer(graph_server: GraphContractServer) -> None:
    url = f"{graph_server.standin.url}/users/{graph_server.upn}/mailFolders"
    with httpx.Client(
        verify=ssl.create_default_context(cafile=graph_server.standin.ca_file)
    ) as client:
        answer = client.get(url, headers={"Authorization": "Bearer nope"})
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert answer.headers["request-id"]
