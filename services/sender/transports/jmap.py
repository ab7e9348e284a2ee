"""Sending through JMAP (RFC 8621 §7): the built MIME message is uploaded as a blob, imported
into the Sent mailbox (``Email/import``: the bytes stay exactly as built, so Message-ID,
In-Reply-To, References and Auto-Submitted survive), and submitted with
``EmailSubmission/set`` with an explicit envelope, as the identity whose address is the
From (``Identity/get``). The submission's ``deliveryStatus`` gives the per-recipient outcome.

Same shape as the SMTP transport (``send(message, connection, recipients, starting=)`` →
``SendResult``), so the sender picks it by ``connection.protocol == "jmap"``.

Failure                                        → Mailroom error
├── HTTP 429/5xx, no connection, a timeout or → Transient (see shared.mailbox.jmap.client)
│   a loss in the session, Identity/get or the
│   upload (nothing was submitted)
├── connection lost or timed out once the     → OutcomeUnknown: the server may have
│   request with Email/import and               submitted the mail, so it is not sent
│   EmailSubmission/set (one request) left       again on a guess (``inflight``)
├── sign-in refused                          → AuthFailed (a Permanent); a named static
│                                                token is marked failing with the answer
├── no submission capability                  → Permanent
├── notCreated serverFail/…Unavailable/rateLimit → Transient
├── notCreated smtpProtocolError with a 4xx    → Transient, with 5xx → Permanent
├── any other notCreated (forbiddenFrom, invalidRecipients, …) → Permanent
├── a recipient whose smtpReply is 4xx/5xx    → a refusal of that recipient in the reply
└── EmailSubmission/get (no deliveryStatus    → accepted, logged: the submission exists, so
    in the answer) fails                         the mail is neither sent again nor failed
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from email.message import EmailMessage

from services.sender.compose import envelope_recipients, envelope_sender, wire_bytes
from services.sender.tokens import TokenProviders
from services.sender.transport import Refusal, SendResult, Starting
from services.sender.transports.inflight import maybe_sent
from shared.auth import AuthFailed, NamedTokenProvider
from shared.errors import MailroomError, Permanent, Transient
from shared.mailbox._tls import tls_context
from shared.mailbox.jmap.client import (
    CORE,
    MAIL,
    SUBMISSION,
    TRANSIENT_METHOD_ERRORS,
    JmapClient,
    Json,
    Session,
    auth_header,
)
from shared.models.config import OutgoingConnection

log = logging.getLogger(__name__)
SMTP_CODE = re.compile(r"^\s*([2-5]\d\d)[ -]?(.*)$", re.DOTALL)
USING = (CORE, MAIL, SUBMISSION)


class JmapTransport:
    """Sends built messages by JMAP submission; one HTTP client per server and user."""

    def __init__(self, tokens: TokenProviders | None = None) -> None:
        """``tokens`` signs in with OAuth 2.0 (default: clients only, no named credentials)."""
        self._clients: dict[tuple[object, ...], JmapClient] = {}
        self._providers = TokenProviders() if tokens is None else tokens
        self._accepted: set[NamedTokenProvider] = set()
        """Named credentials whose sign-in the server accepted since the last refusal (the
        acceptance is noted once, not at every mail)."""
        self._chosen: dict[tuple[JmapClient, str], tuple[Session, str, str]] = {}
        """Per client and sender: the session it was chosen under, the identity and the
        Sent mailbox (Mailbox/get and Identity/get once, not at every mail)."""

    async def send(
        self,
        message: EmailMessage,
        connection: OutgoingConnection,
        recipients: Sequence[str] | None = None,
        *,
        starting: Starting | None = None,
    ) -> SendResult:
        """Submit ``message`` to ``recipients`` (default: its To and Cc); ``starting`` is
        awaited once the session is up, right before the submission."""
        named = self._named(connection)
        try:
            client = await self._client(connection)
            if named is not None and named not in self._accepted:
                await named.login_ok()
                self._accepted.add(named)
            return await self._submit(client, message, recipients, starting)
        except AuthFailed as exc:
            if named is not None:
                self._accepted.discard(named)
                await named.refused(str(exc))
            raise

    async def _submit(
        self,
        client: JmapClient,
        message: EmailMessage,
        recipients: Sequence[str] | None,
        starting: Starting | None,
    ) -> SendResult:
        sender = envelope_sender(message)
        rcpts = list(recipients) if recipients is not None else envelope_recipients(message)
        account = self._account(client)
        identity, target = await self._chosen_for(client, sender)
        blob = await client.upload(wire_bytes(message))
        if starting is not None:
            await starting()
        envelope = {
            "mailFrom": {"email": sender},
            "rcptTo": [{"email": r} for r in rcpts],
        }
        calls: list[list[object]] = [
            [
                "Email/import",
                {
                    "accountId": account,
                    "emails": {
                        "m": {
                            "blobId": blob,
                            "mailboxIds": {target: True},
                            "keywords": {"$seen": True},
                        }
                    },
                },
                "a",
            ],
            [
                "EmailSubmission/set",
                {
                    "accountId": account,
                    "create": {
                        "s": {"identityId": identity, "emailId": "#m", "envelope": envelope}
                    },
                },
                "b",
            ],
        ]
        # Import and submission go in one request: once it has left, the server may have
        # submitted the mail, whatever became of the answer.
        with maybe_sent("the request with EmailSubmission/set"):
            imported, submitted = await client.call(calls, using=USING)
        not_imported = (imported.get("notCreated") or {}).get("m")
        if not_imported:
            raise self._refused(client, sender, not_imported, "Email/import")
        not_sent = (submitted.get("notCreated") or {}).get("s")
        if not_sent:
            raise self._refused(client, sender, not_sent, "EmailSubmission/set")
        created = submitted["created"]["s"]
        status = created.get("deliveryStatus")
        if status is None:
            status = await _delivery_status(client, account, str(created["id"]))
        return reply_of(str(created["id"]), status or {}, rcpts)

    async def _chosen_for(self, client: JmapClient, sender: str) -> tuple[str, str]:
        """The identity and Sent mailbox for ``sender``, asked for again once the session
        changed (a new session object: see ``JmapClient.current_session``)."""
        cached = self._chosen.get((client, sender))
        if cached is not None and cached[0] is client.session:
            return cached[1], cached[2]
        identity, target, _ = await self._identity_and_target(client, sender)
        self._chosen[(client, sender)] = (client.need_session(), identity, target)
        return identity, target

    def _refused(
        self, client: JmapClient, sender: str, error: Json, method: str
    ) -> Transient | Permanent:
        """The error of a refused import or submission; a Permanent one forgets the chosen
        identity and mailbox (deleted or changed, the next mail asks again)."""
        failure = set_error(error, f"{method} for {client.where}")
        if isinstance(failure, Permanent):
            self._chosen.pop((client, sender), None)
        return failure

    async def check(self, connection: OutgoingConnection, *, sender: str | None) -> list[str]:
        """The session (with submission), ``Identity/get`` and the Sent mailbox, as a send
        would take them, without submitting anything."""
        client = await self._client(connection)
        steps = [f"JMAP session of {client.where} offers submission"]
        _, _, identities = await self._identity_and_target(client, sender)
        names = ", ".join(str(i.get("email") or i.get("name") or i["id"]) for i in identities)
        steps.append(f"Identity/get: {names}" + (f"; sending as {sender}" if sender else ""))
        return steps

    async def _identity_and_target(
        self, client: JmapClient, sender: str | None
    ) -> tuple[str, str, list[Json]]:
        """The identity that may send as ``sender`` (any when None), the mailbox a sent
        mail is imported into, and every identity; Permanent when one is missing."""
        account = self._account(client)
        mailboxes, identities = await client.call(
            [
                ["Mailbox/get", {"accountId": account, "properties": ["role"]}, "m"],
                ["Identity/get", {"accountId": account}, "i"],
            ],
            using=USING,
        )
        found = list(identities["list"])
        if sender is None:
            identity = str(found[0]["id"]) if found else None
        else:
            identity = choose_identity(found, sender)
        if identity is None:
            raise Permanent(f"no JMAP identity of {client.where} may send as {sender or 'anyone'}")
        target = sent_mailbox(mailboxes["list"])
        if target is None:
            raise Permanent(f"JMAP account of {client.where} has no Sent or Drafts mailbox")
        return identity, target, found

    async def close(self) -> None:
        """Close every HTTP client."""
        clients, self._clients = list(self._clients.values()), {}
        self._chosen.clear()
        for client in clients:
            await client.close()

    async def _client(self, conn: OutgoingConnection) -> JmapClient:
        # The sign-in is part of the key: a changed password or OAuth client gets a new client.
        secret = conn.password.get_secret_value() if conn.password is not None else None
        key = (conn.jmap_session_url, conn.username, conn.auth, secret, conn.credential)
        client = self._clients.get(key)
        if client is None:
            client = self._open(conn)
            self._clients[key] = client
        # Fetched again only when it changed (a sessionState, a refreshed token, a failure).
        session = await client.current_session()
        if SUBMISSION not in session.capabilities:
            raise Permanent(f"JMAP server of {client.where} offers no submission ({SUBMISSION})")
        return client

    def _open(self, conn: OutgoingConnection) -> JmapClient:
        tokens = self._providers.provider(conn) if conn.auth == "oauth2" else None
        user = conn.username or ""
        return JmapClient(
            conn.jmap_session_url,
            user=user,
            auth=auth_header(user, conn.password, tokens),
            timeout=conn.send_timeout_ms / 1000,
            verify=tls_context(
                conn.verify_tls, conn.ca_file, where=f"the JMAP server {conn.jmap_session_url}"
            ),
            refresh_auth=tokens.invalidate if tokens is not None else None,
        )

    def _named(self, conn: OutgoingConnection) -> NamedTokenProvider | None:
        """The named credential's provider of an oauth2 connection that names one."""
        if conn.auth != "oauth2" or conn.credential is None:
            return None
        provider = self._providers.provider(conn)
        return provider if isinstance(provider, NamedTokenProvider) else None

    @staticmethod
    def _account(client: JmapClient) -> str:
        session = client.need_session()
        return session.submission_account_id or session.account_id


async def _delivery_status(client: JmapClient, account: str, submission: str) -> Json | None:
    """The ``deliveryStatus`` of a created submission asked for again; None when the server
    gives none or the question fails."""
    try:
        (got,) = await client.call(
            [["EmailSubmission/get", {"accountId": account, "ids": [submission]}, "g"]],
            using=USING,
        )
    except MailroomError as exc:
        # The server has created the submission: an error now must not send the mail again
        # (a Transient would) nor record it failed; it counts as accepted, as when the
        # server gives no deliveryStatus.
        log.warning(
            "EmailSubmission/get for %s failed after submission %s was created: %s",
            client.where,
            submission,
            exc,
        )
        return None
    found = got.get("list") or [{}]
    status = found[0].get("deliveryStatus")
    return status if isinstance(status, dict) else None


def choose_identity(identities: list[Json], sender: str) -> str | None:
    """The identity for ``sender``: its exact address, else a ``*@domain`` wildcard of its
    domain, else the only identity when it names no address (Cyrus without domains)."""
    address = sender.lower()
    domain = address.rpartition("@")[2]
    for wanted in (address, f"*@{domain}"):
        for identity in identities:
            if str(identity.get("email", "")).lower() == wanted:
                return str(identity["id"])
    if len(identities) == 1 and not identities[0].get("email"):
        return str(identities[0]["id"])
    return None


def sent_mailbox(mailboxes: list[Json]) -> str | None:
    """The mailbox a submitted mail is kept in: role sent, else drafts."""
    for role in ("sent", "drafts"):
        for mailbox in mailboxes:
            if mailbox.get("role") == role:
                return str(mailbox["id"])
    return None


def set_error(error: Json, what: str) -> Transient | Permanent:
    """The Mailroom error of a /set ``notCreated`` entry."""
    kind = str(error.get("type", "unknown"))
    detail = str(error.get("description") or "")
    text = f"{what} failed: {kind}" + (f" ({detail})" if detail else "")
    if kind in TRANSIENT_METHOD_ERRORS:
        return Transient(text)
    match = SMTP_CODE.match(detail)
    if kind == "smtpProtocolError" and match and match.group(1).startswith("4"):
        return Transient(text)
    return Permanent(text)


def reply_of(submission: str, status: Json, recipients: Sequence[str]) -> SendResult:
    """The SMTP-shaped outcome of a submission: accepted text and per-recipient refusals.

    A recipient whose ``smtpReply`` is 4xx or 5xx (or whose ``delivered`` is ``no``) is
    refused with that reply; the others were accepted. A server that gives no
    ``deliveryStatus`` (Cyrus 3.6 relays synchronously and fails the whole submission on a
    refused recipient) has accepted every recipient."""
    refused: dict[str, Refusal] = {}
    lowered = {k.lower(): v for k, v in status.items()}
    for rcpt in recipients:
        entry = lowered.get(rcpt.lower())
        if not entry:
            continue
        reply = str(entry.get("smtpReply", ""))
        match = SMTP_CODE.match(reply)
        code = int(match.group(1)) if match else 0
        if code >= 400:
            refused[rcpt] = Refusal(code, match.group(2).strip() if match else reply)
        elif entry.get("delivered") == "no":
            refused[rcpt] = Refusal(550, reply or "not delivered")
    if len(refused) == len(recipients):
        return SendResult(None, refused)
    return SendResult(f"250 JMAP submission {submission} accepted", refused)
