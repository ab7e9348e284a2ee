"""GRAPH and JMAP accounts and outgoing connections from an administrator's side, through the
config service's HTTP API on the real local servers (the Graph stand-in, Cyrus): created
without a host, tested before and after saving (incoming: sign-in, folder list,
move_to_folder), their folders listed, the outgoing connection tested, and Test Account's
real test mail sent through the registry transport."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from deploy.local.cyrus import Cyrus
from deploy.local.graph_standin import GraphStandin
from tests.integration.graph.contract_server import (
    APP_SECRET,
    GraphContractServer,
    graph_server,
    graph_standin,
)
from tests.integration.jmap.contract_server import cyrus, relay
from tests.integration.jmap.helpers import fresh_user
from tests.integration.jmap.relay import Relay
from tests.support_cli import cli_env, mailroom

__all__ = ["cyrus", "graph_server", "graph_standin", "relay"]  # the fixtures used here

pytestmark = pytest.mark.integration


def graph_body(server: GraphContractServer, **fields: Any) -> dict[str, Any]:
    """A new GRAPH account on the stand-in's fresh mailbox: no host, no port."""
    return {
        "name": "m365",
        "protocol": "GRAPH",
        "username": server.upn,
        "auth": "oauth2",
        "client_id": server.client_id,
        "client_secret": APP_SECRET,
        "authority": server.issuer.authority(),
        "oauth_ca_file": str(server.issuer.ca_file),
        "graph_url": server.standin.url,
        "ca_file": str(server.standin.ca_file),
        **fields,
    }


async def test_a_graph_account_is_tested_created_and_listed_without_a_host(
    api: httpx.AsyncClient, graph_server: GraphContractServer, graph_standin: GraphStandin
) -> None:
    graph_standin.add_folder(graph_server.upn, "Done")
    body = graph_body(graph_server, after_fetch="move", move_to_folder="Done")

    tested = (await api.post("/accounts/test", json=body)).json()
    assert tested["ok"] and tested["error"] is None, tested
    assert tested["server"] == graph_standin.url and tested["protocol"] == "GRAPH"
    listed = (await api.post("/accounts/folders", json=body)).json()
    assert listed["error"] is None and {"Inbox", "Done"} <= set(listed["folders"])
    missing = (await api.post("/accounts/test", json=body | {"move_to_folder": "Nope"})).json()
    assert not missing["ok"] and "move_to_folder 'Nope' does not exist" in missing["error"]
    wrong = await api.post("/accounts/test", json=body | {"client_secret": "n0t-the-s3cret"})
    assert not wrong.json()["ok"] and "n0t-the-s3cret" not in wrong.text

    created = await api.post("/accounts", json=body)
    assert created.status_code == 201, created.text
    assert (await api.get("/accounts/m365")).json()["host"] == "127.0.0.1"  # from graph_url
    assert (await api.post("/accounts/m365/test")).json()["ok"]
    assert "Done" in (await api.get("/accounts/m365/folders")).json()["folders"]

    # Test Account through a graph outgoing connection: sendMail on the stand-in.
    outgoing = {k: v for k, v in body.items() if k not in ("name", "after_fetch")}
    outgoing = {k: v for k, v in outgoing.items() if k != "move_to_folder"}
    put = await api.put("/outgoing", json=outgoing | {"protocol": "graph"})
    assert put.status_code == 200, put.text
    checked = (await api.post("/outgoing/test", json={})).json()
    assert checked["ok"] and checked["server"] == graph_standin.url, checked
    sent = (await api.post("/accounts/m365/test-mail", json={"to": "carol@example.org"})).json()
    assert sent["ok"] and sent["test_mail"].startswith("sent to carol@example.org: 202"), sent
    assert len(graph_standin.sent(graph_server.upn)) == 1
    assert APP_SECRET not in json.dumps([tested, listed, missing, checked, sent])


async def test_a_jmap_account_is_tested_created_and_listed_without_a_host(
    api: httpx.AsyncClient, cyrus: Cyrus, relay: Relay
) -> None:
    user, password = fresh_user(cyrus)
    body = {
        "name": "fastmail",
        "protocol": "JMAP",
        "jmap_url": cyrus.base_url,
        "username": user,
        "password": password,
        "after_fetch": "move",
        "move_to_folder": "Archive",
    }

    tested = (await api.post("/accounts/test", json=body)).json()
    assert tested["ok"] and tested["message_count"] == 0, tested
    listed = (await api.post("/accounts/folders", json=body)).json()
    assert listed["folders"][0] == "INBOX" and "Archive" in listed["folders"]
    wrong = await api.post("/accounts/test", json=body | {"password": "n0t-the-pw"})
    assert not wrong.json()["ok"] and "refused the sign-in" in wrong.json()["error"]
    assert "n0t-the-pw" not in wrong.text

    created = await api.post("/accounts", json=body)
    assert created.status_code == 201, created.text
    assert (await api.post("/accounts/fastmail/test")).json()["ok"]

    outgoing = {"protocol": "jmap", "jmap_url": cyrus.base_url, "username": user}
    put = await api.put("/outgoing", json=outgoing | {"password": password})
    assert put.status_code == 200, put.text
    checked = (await api.post("/outgoing/test", json={})).json()
    assert checked["ok"] and any(s.startswith("Identity/get") for s in checked["steps"]), checked
    to = f"{user}-tester@example.net"
    sent = (await api.post("/accounts/fastmail/test-mail", json={"to": to})).json()
    assert sent["ok"] and sent["test_mail"].startswith(f"sent to {to}"), sent
    assert [m for m in relay.mails if m.rcpt_tos == [to]]
    assert password not in json.dumps([tested, listed, checked, sent])


def test_the_cli_tests_and_adds_a_jmap_account_without_a_host(
    rabbit_url: str, mongo_url: str, mongo_db_name: str, cyrus: Cyrus
) -> None:
    user, password = fresh_user(cyrus)
    env = cli_env(
        rabbit_url=rabbit_url, mongo_url=mongo_url, database=mongo_db_name, secret_key="k" * 20
    )
    options = ("--protocol", "JMAP", "--jmap-url", cyrus.base_url, "--username", user,
               "--password-stdin")  # fmt: skip
    tested = mailroom("accounts", "test", "box", "--from-values", *options, "--json",
                      env=env, stdin=f"{password}\n")  # fmt: skip
    assert tested.returncode == 0, tested.stdout + tested.stderr
    (report,) = json.loads(tested.stdout)
    assert report["ok"] and report["server"].startswith(cyrus.base_url)
    added = mailroom("accounts", "add", "box", *options, env=env, stdin=f"{password}\n")
    assert added.returncode == 0, added.stdout + added.stderr
    folders = mailroom("accounts", "folders", "box", env=env)
    assert folders.returncode == 0 and "Archive" in folders.stdout, folders.stdout
    assert password not in tested.stdout + added.stdout + folders.stdout


def test_the_cli_adds_and_tests_a_graph_account_and_connection_without_a_host(
    rabbit_url: str, mongo_url: str, mongo_db_name: str, graph_server: GraphContractServer
) -> None:
    env = cli_env(
        rabbit_url=rabbit_url, mongo_url=mongo_url, database=mongo_db_name, secret_key="k" * 20
    )
    standin, issuer = graph_server.standin, graph_server.issuer
    client = ("--username", graph_server.upn, "--auth", "oauth2",
              "--client-id", graph_server.client_id, "--authority", issuer.authority(),
              "--oauth-ca-file", str(issuer.ca_file), "--graph-url", standin.url,
              "--ca-file", str(standin.ca_file))  # fmt: skip
    added = mailroom("accounts", "add", "m365", "--protocol", "GRAPH", *client,
                     "--client-secret-stdin", env=env, stdin=f"{APP_SECRET}\n")  # fmt: skip
    assert added.returncode == 0, added.stdout + added.stderr
    tested = mailroom("accounts", "test", "m365", "--json", env=env)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert json.loads(tested.stdout)[0]["ok"], tested.stdout
    folders = mailroom("accounts", "folders", "m365", env=env)
    assert folders.returncode == 0 and "Inbox" in folders.stdout, folders.stdout

    outgoing = mailroom("outgoing", "set", "--protocol", "graph", *client,
                        "--client-secret-stdin", env=env, stdin=f"{APP_SECRET}\n")  # fmt: skip
    assert outgoing.returncode == 0, outgoing.stdout + outgoing.stderr
    checked = mailroom("outgoing", "test", "--to", "carol@example.org", "--json", env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "sent to carol@example.org: 202" in checked.stdout
    assert APP_SECRET not in added.stdout + tested.stdout + outgoing.stdout + checked.stdout
