"""Field validators several settings views share."""

from __future__ import annotations

import re


def optional_regex(value: str | None) -> str | None:
    """None, or a pattern that compiles (the error says why not)."""
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regex: {exc}") from None
    return value
