"""The Graph outgoing test reads the permissions an Entra ID token grants (JWT ``roles`` for
app permissions, ``scp`` for delegated ones); an opaque token grants nothing it can read."""

from __future__ import annotations

import base64
import json

from services.sender.transports.graph import token_permissions


def jwt(claims: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


def test_app_roles_and_delegated_scopes_are_read() -> None:
    assert token_permissions(jwt({"roles": ["Mail.Send", "Mail.ReadWrite"]})) == {
        "Mail.Send",
        "Mail.ReadWrite",
    }
    assert token_permissions(jwt({"scp": "Mail.Send User.Read"})) == {"Mail.Send", "User.Read"}
    assert token_permissions(jwt({"roles": []})) == set()


def test_an_opaque_token_or_one_without_the_claims_reads_as_none() -> None:
    assert token_permissions("opaque-token-value") is None
    assert token_permissions("a.!!!.c") is None
    assert token_permissions(jwt({"sub": "app"})) is None
