"""Credentials for mail servers: OAuth 2.0 token providers."""

from shared.auth.oauth import (
    CredentialHealth,
    MsalTokenProvider,
    OAuthCredentials,
    TokenProvider,
    xoauth2,
)

__all__ = ["CredentialHealth", "MsalTokenProvider", "OAuthCredentials", "TokenProvider", "xoauth2"]
