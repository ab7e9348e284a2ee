"""Field validators and field types several settings views share."""

from __future__ import annotations

import re
from typing import Annotated

from jinja2 import TemplateError
from pydantic import AfterValidator

from shared.models.messages import HeaderText

_SPACE = re.compile(r"\s")


def optional_regex(value: str | None) -> str | None:
    """None, or a pattern that compiles (the error says why not)."""
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regex: {exc}") from None
    return value


def _host_name(value: str) -> str:
    # An empty or spaced host would only fail later, at every connection attempt, with a
    # resolver error that does not say which setting is wrong.
    if not value:
        raise ValueError("must not be empty: give the server's host name or IP address")
    if _SPACE.search(value):
        raise ValueError(f"{value!r} is not a host name: it contains a space")
    if len(value) > 253:
        raise ValueError("a host name has at most 253 characters")
    return value


def _not_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


HostName = Annotated[HeaderText, AfterValidator(_host_name)]
"""A mail server's host name or IP address: not empty, no spaces."""

NonEmptyText = Annotated[HeaderText, AfterValidator(_not_empty)]
"""Header-safe text that is more than white space (a login name)."""


def render_error(exc: Exception) -> str:
    """Why a template failed to render, for the refusal that names the field.

    Render-time errors can be any exception (``{{ 1/0 }}`` is a ZeroDivisionError, a
    sandboxed ``range`` past its limit an OverflowError): those also carry their type name.
    """
    if isinstance(exc, TemplateError):
        return str(exc)
    return f"{exc} ({type(exc).__name__})" if str(exc) else type(exc).__name__
