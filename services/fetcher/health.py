"""After every round of an account, its health goes to ``account_health`` (see
``shared.store.account_health``): best effort, since a MongoDB hiccup here must not turn a
good round into a failed one, and a failed round is already logged by the supervisor."""

from __future__ import annotations

import logging

from services.fetcher.deps import FetcherDeps
from shared.auth import AuthFailed, CredentialHealth, judge_sign_in
from shared.mailbox import Mailbox
from shared.models.messages import utcnow

log = logging.getLogger(__name__)


def _credential(mailbox: Mailbox) -> CredentialHealth | None:
    # Only the production adapters carry OAuth 2.0 credentials; fakes and Basic auth have none.
    health = getattr(mailbox, "credential_health", None)
    return health if isinstance(health, CredentialHealth) else None


async def record_round(
    deps: FetcherDeps,
    account: str,
    mailbox: Mailbox,
    error: Exception | None,
    failures: int,
) -> None:
    """Record a round of ``account``: good when ``error`` is None, else failed ``failures``
    times in a row. A refused login or token counts as an auth error, and so does any
    failure to get a token (the provider noted it as its own last error). A refused login
    with a named credential's static token marks that credential failing."""
    credential = _credential(mailbox)
    tokens = getattr(mailbox, "tokens", None)
    if error is None:
        await judge_sign_in(tokens)
    elif isinstance(error, AuthFailed):
        await judge_sign_in(tokens, refused=str(error))
    text = None if error is None else str(error) or type(error).__name__
    token_failed = credential is not None and text is not None and credential.last_error == text
    try:
        await deps.repos().account_health.record(
            account=account,
            at=utcnow(),
            error=text,
            auth_error=isinstance(error, AuthFailed) or token_failed,
            failures=failures,
            token_at=credential.last_token_at if credential else None,
            token_expires_at=credential.expires_at if credential else None,
        )
    except Exception as exc:
        log.debug("health of %s not recorded: %s", account, type(exc).__name__)
