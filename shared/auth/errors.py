"""The error for refused credentials, below ``Permanent`` in Mailroom's error tree
(``shared/errors.py``): kept apart so that credential health can tell it from other failures.

Permanent
└── AuthFailed    the mail server refused the login, or the token issuer refused the client
"""

from __future__ import annotations

from shared.errors import Permanent


class AuthFailed(Permanent):
    """The credentials were refused (wrong password, secret, revoked or foreign token);
    retrying with the same ones will not help."""
