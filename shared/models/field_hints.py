"""How a settings field declares what its surfaces need beyond its type: the hints.

A field of a stored view (``IncomingAccount``, ``OutgoingConnection``) is declared once, with
its type, default, constraints, ``title`` and docstring (its description). What the type
cannot say goes into ``json_schema_extra`` through :func:`hints`, so that the API schemas, the
CLI options and the console's form read it from the same place (``shared.models.field_specs``
turns a model into its field specs)::

    port: int | None = Field(
        default=None, ge=1, le=65535, title="Port",
        json_schema_extra=hints(group="Server", placeholder_by={"protocol": {"IMAP": "143"}}),
    )
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypedDict, Unpack, cast

from pydantic.config import JsonDict


class FieldHints(TypedDict, total=False):
    """The hint keys a field may carry in its ``json_schema_extra``; all optional."""

    secret: bool
    """Write-only: shown as set / not set, read from stdin on the CLI. A ``SecretStr`` field
    is secret without saying so."""
    group: str
    """The form section the field belongs to (``Server``, ``Sign-in``, ...)."""
    placeholder: str
    """What an empty input shows, e.g. what an empty value means."""
    placeholder_by: Mapping[str, Mapping[str, str]]
    """A placeholder that depends on another field's value: ``{"protocol": {"IMAP": "143",
    "IMAPS": "993"}}`` (the port a protocol uses when none is given)."""
    applies_to: Mapping[str, Sequence[str]]
    """The field applies only while each named field has one of the listed values:
    ``{"auth": ["basic"]}``. A field without it always applies."""


def hints(**values: Unpack[FieldHints]) -> JsonDict:
    """The hints as a ``json_schema_extra`` mapping; the keys are checked by the type checker."""
    plain = {
        key: (
            {k: dict(v) if isinstance(v, Mapping) else list(v) for k, v in value.items()}
            if isinstance(value, Mapping)
            else value
        )
        for key, value in values.items()
    }
    # Lists and dicts only: json_schema_extra ends up in JSON schemas as it is.
    return cast(JsonDict, plain)
