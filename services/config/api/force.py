"""``?force=true`` on configuration writes: write a change a guard refuses."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

ForceDep = Annotated[
    bool,
    Query(
        description="Write a change a guard refuses (e.g. no incoming script left that puts "
        "mail into cases); the audit record says it was forced."
    ),
]
"""See ``services.config.guards``."""
