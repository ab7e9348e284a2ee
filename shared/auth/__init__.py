"""Credentials for mail servers: OAuth 2.0 token providers, and the error for refused ones."""

from shared.auth.errors import AuthFailed
from shared.auth.named import NamedTokenProvider, judge_sign_in
from shared.auth.oauth import (
    CredentialHealth,
    MsalTokenProvider,
    OAuthCredentials,
    TokenProvider,
    xoauth2,
)

__all__ = [
    "AuthFailed",
    "CredentialHealth",
    "MsalTokenProvider",
    "NamedTokenProvider",
    "OAuthCredentials",
    "TokenProvider",
    "judge_sign_in",
    "xoauth2",
]
