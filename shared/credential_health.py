"""Credential health: what is wrong or about to expire with each named credential, the
alerts that say so, and the Prometheus gauges of seconds to expiry.

:func:`assess` is pure: a credential, its state and the time give a :class:`CredentialReport`
with its conditions:

condition                 when                                                  alert
token_refused             the issuer refused the last token (revoked consent,   at once
                          expired secret, withdrawn delegation), or a server
                          refused a static API token
client_secret_expiring    ``client_secret_expires`` within the warning days     daily
certificate_expiring      the certificate's notAfter within the warning days    daily
refresh_token_expiring    Microsoft delegated: the refresh token unused for     daily
                          90 days less the warning days (Entra lets it lapse)

:func:`check_credentials` assesses every credential (the config service runs it every
minute) and :func:`credential_refused` one credential at once when a refresh failed (the
fetcher and the sender call it). An alert is a notification mail to the administrators,
sent once per credential, condition and UTC day however many instances and rounds see it: the
first to insert the day's key into ``credential_alerts`` sends it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel

from shared import metrics
from shared.broker import publish
from shared.errors import MailroomError
from shared.models.credentials import Credential, CredentialState, certificate_pair
from shared.models.messages import MailAddress, OutgoingMail
from shared.runtime import Runtime
from shared.topology import MAIL_OUTGOING

log = logging.getLogger(__name__)

MICROSOFT_REFRESH_TOKEN_DAYS = 90
"""Entra ID lets a refresh token lapse after 90 days without use."""
Kind = Literal[
    "token_refused", "client_secret_expiring", "certificate_expiring", "refresh_token_expiring"
]
Status = Literal["ok", "warning", "failing"]


class Condition(BaseModel):
    """One thing wrong or about to expire."""

    kind: Kind
    text: str
    expires_at: datetime | None = None


class CredentialReport(BaseModel):
    """A credential's health as an operator reads it; no secret is in it."""

    name: str
    provider: str
    flow: str
    status: Status
    consent: str
    last_login_at: datetime | None = None
    last_token_at: datetime | None = None
    token_expires_at: datetime | None = None
    refresh_token_age_days: float | None = None
    client_secret_expires: datetime | None = None
    certificate_expires: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    conditions: list[Condition] = []


def _refused(state: CredentialState) -> bool:
    if state.consent == "failing":
        return True
    if state.last_error_at is None:
        return False
    return state.last_token_at is None or state.last_error_at > state.last_token_at


def assess(
    credential: Credential, state: CredentialState, *, now: datetime, warning_days: int
) -> CredentialReport:
    """The credential's report at ``now``, warning ``warning_days`` before an expiry."""
    warn = timedelta(days=warning_days)
    conditions: list[Condition] = []
    name = credential.name
    if _refused(state):
        text = f"credential {name}: no token: {state.last_error or 'consent refused'}"
        if credential.static:
            text = (
                f"credential {name}: a server refused its API token: {state.last_error}; "
                f"create a new token and set it with `mailroom credentials set {name} "
                "--token-stdin`"
            )
        conditions.append(Condition(kind="token_refused", text=text))
    secret_expires = None
    if credential.client_secret_expires is not None:
        day = credential.client_secret_expires
        secret_expires = datetime(day.year, day.month, day.day, tzinfo=UTC)
        if secret_expires - now <= warn:
            conditions.append(
                Condition(
                    kind="client_secret_expiring",
                    text=f"credential {name}: the client secret expires on {day.isoformat()}; "
                    "create a new one in the app registration and set it with `mailroom "
                    f"credentials set {name} --client-secret-stdin`",
                    expires_at=secret_expires,
                )
            )
    certificate_expires = None
    if credential.certificate is not None:
        _, certificate = certificate_pair(credential.certificate.get_secret_value())
        certificate_expires = certificate.not_valid_after_utc
        if certificate_expires - now <= warn:
            conditions.append(
                Condition(
                    kind="certificate_expiring",
                    text=f"credential {name}: the certificate expires on "
                    f"{certificate_expires.date().isoformat()}; upload a new one to the app "
                    f"registration and set it with `mailroom credentials set {name} "
                    "--certificate-stdin`",
                    expires_at=certificate_expires,
                )
            )
    age = None
    if state.refresh_token_at is not None:
        age = (now - state.refresh_token_at).total_seconds() / 86400
        lapses = state.refresh_token_at + timedelta(days=MICROSOFT_REFRESH_TOKEN_DAYS)
        microsoft_delegated = credential.provider == "microsoft" and credential.delegated
        if microsoft_delegated and lapses - now <= warn:
            conditions.append(
                Condition(
                    kind="refresh_token_expiring",
                    text=f"credential {name}: the refresh token has not been used for "
                    f"{age:.0f} days and lapses on {lapses.date().isoformat()}",
                    expires_at=lapses,
                )
            )
    status: Status = "ok"
    if conditions:
        refused = any(c.kind == "token_refused" for c in conditions)
        expired = any(c.expires_at is not None and c.expires_at <= now for c in conditions)
        status = "failing" if refused or expired else "warning"
    return CredentialReport(
        name=name,
        provider=credential.provider,
        flow=credential.flow,
        status=status,
        consent=state.consent,
        last_login_at=state.last_login_at,
        last_token_at=state.last_token_at,
        token_expires_at=state.token_expires_at,
        refresh_token_age_days=age,
        client_secret_expires=secret_expires,
        certificate_expires=certificate_expires,
        last_error=state.last_error,
        last_error_at=state.last_error_at,
        conditions=conditions,
    )


def _gauges(report: CredentialReport, now: datetime) -> None:
    refresh = None
    if report.refresh_token_age_days is not None and report.provider == "microsoft":
        refresh = (MICROSOFT_REFRESH_TOKEN_DAYS - report.refresh_token_age_days) * 86400
    for kind, at in (
        ("access_token", report.token_expires_at),
        ("client_secret", report.client_secret_expires),
        ("certificate", report.certificate_expires),
    ):
        metrics.credential_expiry(report.name, kind, (at - now).total_seconds() if at else None)
    metrics.credential_expiry(report.name, "refresh_token", refresh)


def alert_mail(
    condition: Condition, recipients: list[MailAddress], day: str, name: str
) -> OutgoingMail:
    """The notification of ``condition`` on ``day``: its id is the dedupe key, so that a
    redelivered or repeated alert is not mailed twice."""
    return OutgoingMail(
        mail_id=f"credential-{name}-{condition.kind}-{day}",
        kind="notification",
        automatic=True,
        to=recipients,
        subject=f"Credential {name}: {condition.kind.replace('_', ' ')}",
        text=(
            f"{condition.text}\n\nAccounts signing in with this credential stop fetching and "
            "sending once it fails. `mailroom credentials show "
            f"{name}` shows its state.\n"
        ),
    )


async def _alert(rt: Runtime, name: str, condition: Condition, now: datetime) -> bool:
    recipients = list(rt.config.addresses.technical_recipients)
    if not recipients:
        log.warning("credential %s: %s, but no notification_recipients", name, condition.kind)
        return False
    day = now.date().isoformat()
    if not await rt.credentials.first_alert(key=f"{name}:{condition.kind}:{day}", at=now):
        return False  # mailed today already (by this or another instance)
    mail = alert_mail(condition, recipients, day, name)
    await publish(rt.broker, mail, routing_key=MAIL_OUTGOING)
    log.warning("credential %s: %s (administrators mailed)", name, condition.kind)
    return True


async def _check(
    rt: Runtime, credential: Credential, now: datetime, kinds: set[Kind] | None
) -> CredentialReport:
    state = await rt.credentials.state(name=credential.name)
    warning_days = rt.config.settings.credential_warning_days
    report = assess(credential, state, now=now, warning_days=warning_days)
    _gauges(report, now)
    for condition in report.conditions:
        if kinds is None or condition.kind in kinds:
            await _alert(rt, credential.name, condition, now)
    return report


async def check_credentials(
    rt: Runtime, *, now: datetime | None = None, alert: bool = True
) -> list[CredentialReport]:
    """Assess every credential, set the gauges and (with ``alert``) send the day's alerts;
    a credential whose check fails is logged and skipped, never holding up the others."""
    at = now or datetime.now(UTC)
    reports = []
    for credential in await rt.credentials.all():
        try:
            reports.append(await _check(rt, credential, at, None if alert else set()))
        except MailroomError as exc:
            log.warning("credential %s not checked: %s", credential.name, exc)
    return reports


async def credential_refused(rt: Runtime, name: str) -> None:
    """Alert at once that credential ``name`` got no token (called where the refresh
    failed); best effort: the failure itself is already on the credential's state."""
    try:
        credential = await rt.credentials.get(name=name)
        await _check(rt, credential, datetime.now(UTC), {"token_refused"})
    except MailroomError as exc:
        log.warning("credential %s: alert not sent: %s", name, exc)
