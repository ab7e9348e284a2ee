"""Errors of the config service beyond ``shared.errors``."""

from __future__ import annotations

from shared.errors import ConfigRejected


class Conflict(ConfigRejected):
    """The change collides with what exists (an account name already taken); HTTP 409."""
