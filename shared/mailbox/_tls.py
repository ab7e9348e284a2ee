"""TLS decisions: the certificate check of every server (IMAP, POP3, SMTP, JMAP, Graph), and
STARTTLS of the IMAP and POP3 adapters.

``security`` of an IMAP or POP3 account (IMAPS/POP3S are TLS from the first byte):

- ``STARTTLS``: upgrade, and fail (Permanent) when the server does not offer it;
- ``auto``: upgrade when offered; otherwise refuse to send the password in clear (Permanent),
  like Cherwell CSM's "Auto": a server that stops offering STARTTLS (or an attacker who strips
  it from the capabilities) must not receive the password;
- ``none``: never upgrade and log in in clear; the operator chose it, and it is logged.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping

from shared.errors import Permanent
from shared.models.config import IncomingAccount

log = logging.getLogger(__name__)


def tls_context(
    verify_tls: bool,
    ca_file: str | None,
    *,
    where: str,
    extra: Mapping[str, object] | None = None,
) -> ssl.SSLContext:
    """The context for a server (IMAP, POP3, SMTP, JMAP, Graph): ``ca_file`` alone (or the
    system store) verifies it, unless verification is off, which is logged each time.
    ``where`` names what is connected to, in the log and the error (``account 'x'``);
    ``extra`` goes with the log record. A CA file that cannot be read is Permanent (only a
    configuration change helps), never a raw OSError."""
    if not verify_tls:
        log.warning(
            "TLS certificate verification is OFF for %s: the connection is encrypted, but "
            "the server is not authenticated",
            where,
            extra=dict(extra or {}),
        )
        # No trust anchor is consulted, so ca_file is not read.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    try:
        # With ca_file, that file alone is the trust anchor; without, the system store.
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise Permanent(
            f"CA file {ca_file!r} of {where} cannot be used: "
            f"{getattr(exc, 'strerror', None) or exc}"
        ) from exc


def account_tls_context(account: IncomingAccount, *, where: str) -> ssl.SSLContext:
    """:func:`tls_context` for an incoming account's server at ``where``."""
    return tls_context(
        account.verify_tls,
        account.ca_file,
        where=f"account {account.name!r}",
        extra={"account": account.name, "server": where},
    )


def wants_starttls(account: IncomingAccount, *, offered: bool, where: str) -> bool:
    """Whether to upgrade a plain connection now; raises Permanent where the policy forbids
    going on without TLS."""
    if account.uses_tls:
        return False
    if account.security == "none":
        log.warning(
            "account %s logs in to %s without TLS (security none): the password travels in clear",
            account.name,
            where,
            extra={"account": account.name, "server": where},
        )
        return False
    if offered:
        return True
    what = "requires STARTTLS" if account.security == "STARTTLS" else "has security auto"
    raise Permanent(
        f"{account.protocol} server {where} does not offer STARTTLS, and account "
        f"{account.name!r} {what}: the password is not sent in clear. Use "
        f"{account.protocol}S, or security none if the network is trusted"
    )
