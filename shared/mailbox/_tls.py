"""TLS decisions shared by the IMAP and POP3 adapters: the certificate check and STARTTLS.

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

from shared.errors import Permanent
from shared.models.config import IncomingAccount

log = logging.getLogger(__name__)


def tls_context(account: IncomingAccount, *, where: str) -> ssl.SSLContext:
    """The context for the account's server: the CA file (or the system store) verifies it,
    unless verification was explicitly turned off, which is logged each time."""
    if not account.verify_tls:
        log.warning(
            "TLS certificate verification is OFF for account %s: the connection is "
            "encrypted, but the server is not authenticated",
            account.name,
            extra={"account": account.name, "server": where},
        )
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    try:
        # With ca_file, that file alone is the trust anchor; without, the system store.
        return ssl.create_default_context(cafile=account.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise Permanent(
            f"CA file {account.ca_file!r} of account {account.name!r} cannot be used: "
            f"{getattr(exc, 'strerror', None) or exc}"
        ) from exc


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
